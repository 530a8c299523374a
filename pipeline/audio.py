"""Join a chapter's sentence PCM, lay out its silences, measure it, and encode it once."""

from __future__ import annotations

import logging
import math
import os
import tempfile
from collections.abc import Sequence

from pipeline.ffmpeg import run_ffmpeg
from pipeline.formats import chapter_format, encoder_arguments, get_format, output_rate
from pipeline.loudness import LoudnessStats, integrated_loudness, measure_loudness
from pipeline.records import (
    SAMPLE_WIDTH_BYTES,
    ChapterAudio,
    ChapterLayout,
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

    The chapter starts with the chapter silence. Each sentence is followed by the
    paragraph silence when it ends a paragraph, else by the sentence silence, and the
    last sentence by the chapter silence. Zero padding then fills the last codec frame.

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
    """Encode mono PCM to AAC-LC in an MP4 (.m4a) container and return the file's bytes."""
    return _encode_to_file(_pcm_input(sample_rate), pcm, ["-c:a", "aac", "-b:a", bitrate, "-f", "mp4"], ".m4a")


def _pcm_input(sample_rate: int) -> list[str]:
    return ["-f", "s16le", "-ar", str(sample_rate), "-ac", "1", "-i", "pipe:0"]


def _encode_to_file(inputs: list[str], data: bytes, outputs: list[str], suffix: str) -> bytes:
    """Run ffmpeg from ``data`` on stdin into a temporary file and return the file's bytes.

    MP4 and FLAC write their headers last, which needs a seekable output, so the file goes
    through the worker's local disk and is removed before returning.
    """
    handle, path = tempfile.mkstemp(suffix=suffix, prefix="chapter-")
    os.close(handle)
    try:
        run_ffmpeg([*inputs, *outputs, "-y", path], stdin=data)
        with open(path, "rb") as encoded:
            return encoded.read()
    finally:
        os.unlink(path)


def resample(pcm: bytes, source_rate: int, target_rate: int) -> bytes:
    """Resample mono 16-bit PCM with ffmpeg's SoX resampler; unchanged when the rates match."""
    if source_rate == target_rate:
        return pcm
    return run_ffmpeg(
        [*_pcm_input(source_rate), "-af", "aresample=resampler=soxr:precision=28",
         "-ar", str(target_rate), "-f", "s16le", "-c:a", "pcm_s16le", "-"],
        stdin=pcm,
    )


def _scale_timings(
    timings: Sequence[SentenceTiming], source_rate: int, target_rate: int
) -> tuple[SentenceTiming, ...]:
    """Convert sentence positions to ``target_rate``, rounded to the nearest sample."""
    if source_rate == target_rate:
        return tuple(timings)
    return tuple(
        SentenceTiming(
            timing.index,
            round(timing.start * target_rate / source_rate),
            round(timing.length * target_rate / source_rate),
        )
        for timing in timings
    )


def build_chapter_layout(
    index: int,
    title: str,
    sentences: Sequence[Sentence],
    audios: Sequence[SpeechAudio],
    settings: SynthesisSettings,
    loudness: LoudnessStats | None = None,
    keep_audio: bool = True,
) -> ChapterLayout:
    """Lay out one chapter at the output rate, measure its loudness and keep it as FLAC.

    The sentences are joined at the voice's rate (see ``lay_out_chapter``), resampled once
    when the output needs another rate, then padded to whole frames of the output codec.
    ``loudness``, when given, is taken as the chapter's statistics instead of measuring.
    Without ``keep_audio`` the FLAC is not encoded and ``flac`` stays empty.
    """
    output = get_format(settings.output_format)
    pcm, timings, _ = lay_out_chapter(sentences, audios, settings, frame_samples=1)
    voice_rate = audios[0].sample_rate
    rate = output_rate(output, settings.sample_rate, voice_rate)
    pcm = resample(pcm, voice_rate, rate)
    timings = _scale_timings(timings, voice_rate, rate)

    padding = -(len(pcm) // SAMPLE_WIDTH_BYTES) % output.chapter_frame
    pcm += bytes(padding * SAMPLE_WIDTH_BYTES)
    stats = loudness if loudness is not None else measure_loudness(pcm, rate)
    flac = _encode_to_file(_pcm_input(rate), pcm, ["-c:a", "flac", "-f", "flac"], ".flac") if keep_audio else b""
    logger.info(
        "chapter c%03d %r: laid out %d sentences, %.2f s at %d Hz, %.1f LUFS",
        index, title, len(sentences), len(pcm) / SAMPLE_WIDTH_BYTES / rate, rate, stats.integrated,
    )
    return ChapterLayout(
        index=index,
        title=title,
        flac=flac,
        sample_rate=rate,
        samples=len(pcm) // SAMPLE_WIDTH_BYTES,
        padding=padding,
        loudness=stats,
        sentences=timings,
        reused=sum(audio.reused for audio in audios),
    )


LIMITER_FILTER = "alimiter=limit={limit:.6f}:attack=0.5:release=5:level=disabled:latency=1"
"""ffmpeg's look-ahead limiter. ``latency=1`` removes its delay, so the length is unchanged.
The short attack and release keep the loudness it takes away small (measured: 1.1 LU at 7 dB
of peak reduction on Piper speech, against 1.7 LU with 5 ms and 50 ms)."""


def limit_chapter(layout: ChapterLayout, gain_db: float, limit_dbfs: float) -> bytes:
    """Return the chapter's PCM after the gain and the limiter, at its planned loudness.

    The limiter takes some loudness away with the peaks, so the result is measured and,
    when it fell short by more than 0.1 LU, made again once with the shortfall added to
    the gain. Every chapter thus ends at the loudness the book's plan gave it.
    """
    planned = integrated_loudness([layout.loudness]) + gain_db
    pcm = _gain_and_limit(layout, gain_db, limit_dbfs)
    reached = integrated_loudness([measure_loudness(pcm, layout.sample_rate)])
    if math.isfinite(planned) and math.isfinite(reached) and planned - reached > 0.1:
        logger.debug("chapter c%03d: limiter took %.2f LU; adding it back", layout.index, planned - reached)
        pcm = _gain_and_limit(layout, gain_db + planned - reached, limit_dbfs)
    return pcm


def _gain_and_limit(layout: ChapterLayout, gain_db: float, limit_dbfs: float) -> bytes:
    limiter = LIMITER_FILTER.format(limit=10 ** (limit_dbfs / 20))
    return run_ffmpeg(
        ["-f", "flac", "-i", "pipe:0", "-af", f"volume={gain_db:.6f}dB:precision=double,{limiter}",
         "-f", "s16le", "-c:a", "pcm_s16le", "-"],
        stdin=layout.flac,
    )


def encode_chapter(
    layout: ChapterLayout, gain_db: float, settings: SynthesisSettings, limit_dbfs: float | None = None
) -> ChapterAudio:
    """Apply the book's gain (and limiter, when ``limit_dbfs`` is set) and encode once.

    Formats joined by stream copy (M4B) get their final codec here; the others get FLAC,
    which the book's single encode reads.
    """
    output = get_format(settings.output_format)
    target = chapter_format(output)
    codec = [*encoder_arguments(target, settings.audio_bitrate), "-f", target.muxer]
    if limit_dbfs is None:
        filters = ["-af", f"volume={gain_db:.6f}dB:precision=double"] if gain_db else []
        encoded = _encode_to_file(["-f", "flac", "-i", "pipe:0"], layout.flac, [*filters, *codec], target.suffix)
    else:
        pcm = limit_chapter(layout, gain_db, limit_dbfs)
        encoded = _encode_to_file(_pcm_input(layout.sample_rate), pcm, codec, target.suffix)

    logger.info(
        "chapter c%03d %r: %+.2f dB, %.2f s, %d bytes of %s",
        layout.index, layout.title, gain_db, layout.samples / layout.sample_rate,
        len(encoded), target.encoder,
    )
    return ChapterAudio(
        index=layout.index,
        title=layout.title,
        encoded=encoded,
        suffix=target.suffix,
        sample_rate=layout.sample_rate,
        samples=layout.samples,
        padding=layout.padding,
        sentences=layout.sentences,
        reused=layout.reused,
        gain_db=gain_db,
    )


def build_chapter_audio(
    index: int,
    title: str,
    sentences: Sequence[Sentence],
    audios: Sequence[SpeechAudio],
    settings: SynthesisSettings,
) -> ChapterAudio:
    """Lay out and encode one chapter with no gain; see ``lay_out_chapter`` for the silences."""
    layout = build_chapter_layout(index, title, sentences, audios, settings)
    return encode_chapter(layout, 0.0, settings)
