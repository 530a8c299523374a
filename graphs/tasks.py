"""Functions that run as graph nodes on the workers, with ids in every log line."""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from collections.abc import Sequence

from pipeline.audio import build_chapter_audio, build_chapter_layout, encode_chapter
from pipeline.cache import CachedSpeech, SentenceCache, sentence_key
from pipeline.errors import CacheError, EngineError
from pipeline.loudness import GainPlan, LoudnessStats, plan_gain
from pipeline.records import (
    CacheSettings,
    ChapterAudio,
    ChapterLayout,
    Sentence,
    SpeechAudio,
    SynthesisSettings,
)
from pipeline.speech import load_engine

logger = logging.getLogger(__name__)

_synthesis_lock = threading.Lock()
"""Serializes engine calls when a worker runs several threads: Piper's phonemizer and
libespeak-ng keep process-global state."""


def synthesize_sentences(
    sentences: Sequence[Sentence], settings: SynthesisSettings, cache: CacheSettings | None = None
) -> list[SpeechAudio]:
    """Speak a batch of sentences of one chapter with this worker's engine.

    With a cache, each sentence is looked up first and every synthesized sentence is
    stored, so a rerun after a crash speaks only what is missing.

    Raises
    ------
    EngineError
        Naming the chapter, the sentence and the start of its text.
    """
    engine = load_engine(settings)
    store = SentenceCache(cache.url) if cache and cache.url else None
    audios: list[SpeechAudio] = []

    for sentence in sentences:
        key = sentence_key(sentence, settings, engine.cache_identity) if store else ""
        found = store.get(key) if store and cache.read else None
        if found is not None and found.sample_rate == engine.sample_rate:
            audios.append(
                SpeechAudio(
                    sentence.chapter_index, sentence.index, found.pcm, found.sample_rate,
                    reused=True, cache_key=key,
                )
            )
            continue

        with _synthesis_lock:
            try:
                pcm = engine.synthesize(sentence.speech_text)
            except EngineError as err:
                raise EngineError(
                    f"chapter {sentence.chapter_index} sentence {sentence.index} "
                    f"({sentence.text[:80]!r}): {err}"
                ) from err
        stored = _store_quietly(store, key, pcm, engine.sample_rate, sentence, replace=not cache.read) if store else None
        if stored is not None and stored.pcm != pcm:
            logger.debug(
                "c%03d-s%04d: another task stored this sentence first; using its take",
                sentence.chapter_index, sentence.index,
            )
            pcm = stored.pcm
        audios.append(
            SpeechAudio(
                sentence.chapter_index, sentence.index, pcm, engine.sample_rate,
                cache_key=key if stored is not None else "",
            )
        )
        logger.debug(
            "synthesized c%03d-s%04d: %d samples",
            sentence.chapter_index, sentence.index, len(pcm) // 2,
        )
    return audios


def _store_quietly(
    store: SentenceCache, key: str, pcm: bytes, rate: int, sentence: Sentence, replace: bool
) -> CachedSpeech | None:
    """Store a sentence and return the entry the cache holds for it, or None when it cannot.

    A cache that cannot be written slows the next run but fails nothing. Without
    ``replace`` an entry that another task stored first is returned (see ``SentenceCache.put``).
    """
    try:
        return store.put(key, pcm, rate, replace=replace)
    except OSError as err:
        logger.warning(
            "cannot store c%03d-s%04d in the sentence cache %s: %s; check its permissions",
            sentence.chapter_index, sentence.index, store.url, err,
        )
        return None


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


def lay_out_chapter_task(
    index: int,
    title: str,
    sentences: Sequence[Sentence],
    batches: Sequence[Sequence[SpeechAudio]],
    settings: SynthesisSettings,
    drop_audio: bool = False,
) -> ChapterLayout:
    """Join a chapter's synthesized batches in sentence order, resample once and measure it.

    With ``drop_audio``, when every sentence is in the sentence cache, the layout keeps
    only the cache keys and leaves ``flac`` empty. A chapter that waits for the book's
    gain then keeps no audio on the cluster, and ``encode_chapter_task`` lays it out again.
    """
    audios = [audio for batch in batches for audio in batch]
    if not drop_audio or not all(audio.cache_key for audio in audios):
        return build_chapter_layout(index, title, sentences, audios, settings)

    layout = build_chapter_layout(index, title, sentences, audios, settings, keep_audio=False)
    logger.debug("chapter c%03d %r: measured; its audio is laid out again once the gain is known", index, title)
    return replace(layout, sentence_keys=tuple(audio.cache_key for audio in audios))


def _lay_out_again(
    layout: ChapterLayout, sentences: Sequence[Sentence], settings: SynthesisSettings, cache: CacheSettings
) -> ChapterLayout:
    """Return ``layout`` with its FLAC rebuilt from the sentence cache.

    Raises
    ------
    CacheError
        When an entry is missing from the cache or the rebuilt chapter has another length.
    """
    store = SentenceCache(cache.url)
    audios = []
    for sentence, key in zip(sentences, layout.sentence_keys, strict=True):
        found = store.get(key)
        if found is None:
            raise CacheError(
                f"chapter c{layout.index:03d} sentence s{sentence.index:04d}: entry {key} left the "
                f"sentence cache {cache.url} during the run; do not prune the cache while a book "
                "builds, and run the build again"
            )
        audios.append(SpeechAudio(sentence.chapter_index, sentence.index, found.pcm, found.sample_rate))

    rebuilt = build_chapter_layout(layout.index, layout.title, sentences, audios, settings, loudness=layout.loudness)
    if rebuilt.samples != layout.samples:
        raise CacheError(
            f"chapter c{layout.index:03d}: laid out again from the sentence cache {cache.url} it has "
            f"{rebuilt.samples} samples instead of {layout.samples}; an entry changed during the run, "
            "so run the build again"
        )
    return replace(layout, flac=rebuilt.flac, sentence_keys=())


def chapter_loudness(layout: ChapterLayout) -> tuple[int, LoudnessStats]:
    """Return a chapter's index and loudness statistics, without its audio."""
    return layout.index, layout.loudness


def plan_book_gain(
    measurements: Sequence[tuple[int, LoudnessStats]], settings: SynthesisSettings, book: str
) -> GainPlan:
    """Combine every chapter's statistics into the book's one gain plan."""
    plan = plan_gain(measurements, settings.loudness_target, settings.true_peak_ceiling, book=book)
    logger.info(
        "book %s: measured %.2f LUFS, gain %+.2f dB, %d chapter(s) leveled, true peak %.2f dBTP",
        book, plan.measured, plan.gain_db, len(plan.offsets_db), plan.true_peak_db,
    )
    return plan


def encode_chapter_task(
    layout: ChapterLayout,
    plan: GainPlan,
    settings: SynthesisSettings,
    sentences: Sequence[Sentence] = (),
    cache: CacheSettings | None = None,
) -> ChapterAudio:
    """Apply the book's gain plan to a laid-out chapter and encode it once.

    A layout without FLAC (see ``lay_out_chapter_task``) is first laid out again from
    ``sentences`` and the sentence ``cache``.
    """
    if not layout.flac and layout.sentence_keys:
        if cache is None:
            raise ValueError(f"chapter c{layout.index:03d} has no audio and no sentence cache to rebuild it from; pass the cache its layout used")
        layout = _lay_out_again(layout, sentences, settings, cache)
    return encode_chapter(layout, plan.chapter_gain_db(layout.index), settings, plan.limit_dbfs)
