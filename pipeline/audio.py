"""Join a chapter's sentence PCM losslessly, lay out its silences, and encode it once."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Sequence

from pipeline.ffmpeg import run_ffmpeg
from pipeline.records import (
    SAMPLE_WIDTH_BYTES,
    ChapterAudio,
    Sentence,
    SentenceTiming,
    SpeechAudio,
    SynthesisSettings,
)

logger = logging.getLogger(__name__)

AAC_FRAME_SAMPLES = 1024
"""Samples per AAC-LC frame. Chapters are padded to whole frames so that the stream-copy
concatenation of chapter files lands every chapter on a frame boundary, without drift."""


def silence_samples(seconds: float, sample_rate: int) -> int:
    """Convert a silence length in seconds to whole samples (rounded to nearest)."""
    return max(0, round(seconds * sample_rate))


def lay_out_chapter(
    sentences: Sequence[Sentence],
    audios: Sequence[SpeechAudio],
    settings: SynthesisSettings,
    frame_samples: int = AAC_FRAME_SAMPLES,
) -> tuple[bytes, tuple[SentenceTiming, ...], int]:
    """Join sentence PCM with silences into one chapter buffer.

    The layout is: chapter silence, then each sentence followed by the paragraph silence
    if it ends a paragraph or else the sentence silence (the last sentence gets the
    chapter silence instead), then zero padding up to a whole number of codec frames.

    Returns
    -------
    tuple
        The PCM, each sentence's start and length in samples, and the padding in samples.
    """
    if len(sentences) != len(audios):
        raise ValueError(f"{len(sentences)} sentences but {len(audios)} audio buffers")
    if not audios:
        raise ValueError("a chapter needs at least one sentence")

    rate = audios[0].sample_rate
    chapter_gap = silence_samples(settings.chapter_silence, rate)
    buffer = bytearray(chapter_gap * SAMPLE_WIDTH_BYTES)
    timings: list[SentenceTiming] = []

    for position, (sentence, audio) in enumerate(zip(sentences, audios)):
        if audio.sample_rate != rate:
            raise ValueError(
                f"sentence c{sentence.chapter_index:03d}-s{sentence.index:04d} is at "
                f"{audio.sample_rate} Hz but the chapter is at {rate} Hz"
            )
        start = len(buffer) // SAMPLE_WIDTH_BYTES
        buffer += audio.pcm
        timings.append(SentenceTiming(sentence.index, start, audio.samples))

        if position == len(sentences) - 1:
            gap = chapter_gap
        elif sentence.paragraph_end:
            gap = silence_samples(settings.paragraph_silence, rate)
        else:
            gap = silence_samples(settings.sentence_silence, rate)
        buffer += bytes(gap * SAMPLE_WIDTH_BYTES)

    samples = len(buffer) // SAMPLE_WIDTH_BYTES
    padding = -samples % frame_samples
    buffer += bytes(padding * SAMPLE_WIDTH_BYTES)
    return bytes(buffer), tuple(timings), padding


def encode_aac(pcm: bytes, sample_rate: int, bitrate: str) -> bytes:
    """Encode mono PCM to AAC-LC in an MP4 (.m4a) container and return the file's bytes.

    MP4 needs a seekable output, so the file goes through a temporary file on the
    worker's local disk, removed before returning.
    """
    handle, path = tempfile.mkstemp(suffix=".m4a", prefix="chapter-")
    os.close(handle)
    try:
        run_ffmpeg(
            [
                "-f", "s16le", "-ar", str(sample_rate), "-ac", "1", "-i", "pipe:0",
                "-c:a", "aac", "-b:a", bitrate, "-y", path,
            ],
            stdin=pcm,
        )
        with open(path, "rb") as encoded:
            return encoded.read()
    finally:
        os.unlink(path)


def build_chapter_audio(
    index: int,
    title: str,
    sentences: Sequence[Sentence],
    audios: Sequence[SpeechAudio],
    settings: SynthesisSettings,
) -> ChapterAudio:
    """Lay out and encode one chapter; see ``lay_out_chapter`` for the silences."""
    pcm, timings, padding = lay_out_chapter(sentences, audios, settings)
    rate = audios[0].sample_rate
    encoded = encode_aac(pcm, rate, settings.audio_bitrate)
    samples = len(pcm) // SAMPLE_WIDTH_BYTES

    logger.info(
        "chapter c%03d %r: %d sentences, %.2f s, %d bytes of AAC",
        index, title, len(sentences), samples / rate, len(encoded),
    )
    return ChapterAudio(
        index=index,
        title=title,
        encoded=encoded,
        suffix=".m4a",
        sample_rate=rate,
        samples=samples,
        padding=padding,
        sentences=timings,
    )
