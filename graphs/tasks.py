"""Functions that run as graph nodes on the workers, with ids in every log line."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from pipeline.audio import build_chapter_audio
from pipeline.errors import EngineError
from pipeline.records import ChapterAudio, Sentence, SpeechAudio, SynthesisSettings
from pipeline.speech import load_engine

logger = logging.getLogger(__name__)

_synthesis_lock = threading.Lock()
"""Serializes engine calls when a worker runs several threads: Piper's phonemizer and
libespeak-ng keep process-global state."""


def synthesize_sentences(
    sentences: Sequence[Sentence], settings: SynthesisSettings
) -> list[SpeechAudio]:
    """Speak a batch of sentences of one chapter with this worker's engine.

    Raises
    ------
    EngineError
        Naming the chapter, the sentence and the start of its text.
    """
    engine = load_engine(settings)
    audios: list[SpeechAudio] = []

    for sentence in sentences:
        with _synthesis_lock:
            try:
                pcm = engine.synthesize(sentence.text)
            except EngineError as err:
                raise EngineError(
                    f"chapter {sentence.chapter_index} sentence {sentence.index} "
                    f"({sentence.text[:80]!r}): {err}"
                ) from err
        audios.append(
            SpeechAudio(sentence.chapter_index, sentence.index, pcm, engine.sample_rate)
        )
        logger.debug(
            "synthesized c%03d-s%04d: %d samples",
            sentence.chapter_index, sentence.index, len(pcm) // 2,
        )
    return audios


def assemble_chapter(
    index: int,
    title: str,
    sentences: Sequence[Sentence],
    batches: Sequence[Sequence[SpeechAudio]],
    settings: SynthesisSettings,
) -> ChapterAudio:
    """Join a chapter's synthesized batches in sentence order and encode the chapter."""
    audios = [audio for batch in batches for audio in batch]
    return build_chapter_audio(index, title, sentences, audios, settings)
