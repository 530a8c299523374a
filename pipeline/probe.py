"""Read a finished audio file back with ffmpeg: codec, rate, decoded length, chapter markers."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from fractions import Fraction

from pipeline.errors import OutputCheckError
from pipeline.ffmpeg import count_decoded_bytes, describe_input, run_ffmpeg
from pipeline.mp4 import audio_track_length
from pipeline.records import SAMPLE_WIDTH_BYTES

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProbedChapter:
    """A chapter marker as a player sees it."""

    title: str
    """The marker's title tag."""

    start: float
    """Start in seconds."""

    end: float
    """End in seconds."""


def decoded_samples(path: str, sample_rate: int | None = None) -> int:
    """Decode ``path`` fully and return its length in samples (at ``sample_rate`` if given).

    The PCM streams through a pipe and is counted, so memory stays flat for long books.
    """
    return count_decoded_bytes(path, sample_rate) // SAMPLE_WIDTH_BYTES


def _unescape(value: str) -> str:
    result = []
    characters = iter(value)
    for character in characters:
        result.append(next(characters, "") if character == "\\" else character)
    return "".join(result)


def read_metadata(path: str) -> tuple[dict[str, str], list[ProbedChapter]]:
    """Return the global tags and the chapters of ``path``, read through FFMETADATA."""
    # -copyts keeps the times as stored: without it ffmpeg shifts chapters by the stream's
    # start time, which is the encoder delay (0.05 s) for an MP3.
    text = run_ffmpeg(["-copyts", "-i", path, "-f", "ffmetadata", "-"]).decode("utf-8")
    tags: dict[str, str] = {}
    chapters: list[dict[str, str]] = []
    current = tags

    for line in text.splitlines():
        if line.startswith(";") or not line.strip():
            continue
        if line.strip() == "[CHAPTER]":
            chapters.append({})
            current = chapters[-1]
            continue
        if line.startswith("["):
            current = {}
            continue
        key, _, value = line.partition("=")
        current[key.lower()] = _unescape(value)

    probed = []
    for chapter in chapters:
        timebase = Fraction(chapter.get("timebase", "1/1000"))
        probed.append(
            ProbedChapter(
                title=chapter.get("title", ""),
                start=float(int(chapter["start"]) * timebase),
                end=float(int(chapter["end"]) * timebase),
            )
        )
    return tags, probed


STREAM_LINE = re.compile(r"Stream #0:\d+.*?: Audio: (\w+)[^,]*, (\d+) Hz")
"""The audio stream line of ffmpeg's input description: codec name and sample rate."""


@dataclass(frozen=True)
class ProbedStream:
    """The first audio stream of a file as ffmpeg reads it."""

    codec: str
    """ffmpeg's codec name (``aac``, ``mp3``, ``opus``, ``flac``, ``pcm_s16le``)."""

    sample_rate: int
    """Samples per second the decoder outputs."""


@dataclass(frozen=True)
class ExpectedOutput:
    """Properties a written audio file must have, from the run that wrote it."""

    codec: str
    """ffmpeg's codec name of the audio stream."""

    sample_rate: int
    """Samples per second the decoder must output."""

    chapters: int
    """Number of chapter markers; 0 for files without any."""

    samples: int
    """Decoded length in samples at ``sample_rate``."""

    tolerance: int
    """Largest accepted difference from ``samples``, in samples (one codec frame per chapter)."""

    mp4: bool = False
    """Whether the file is MP4, whose length is read from its box tables instead of decoded."""


def read_stream(path: str) -> ProbedStream:
    """Return the codec and sample rate of the first audio stream of ``path``.

    Raises
    ------
    OutputCheckError
        When ffmpeg finds no audio stream.
    """
    match = STREAM_LINE.search(describe_input(path))
    if not match:
        raise OutputCheckError(f"{path}: no audio stream found; the written file is invalid")
    return ProbedStream(codec=match.group(1), sample_rate=int(match.group(2)))


def check_output(path: str, expected: ExpectedOutput) -> None:
    """Read ``path`` back and compare it with ``expected``.

    Raises
    ------
    OutputCheckError
        Naming every property that differs; the caller removes the file.
    """
    stream = read_stream(path)
    _, chapters = read_metadata(path)
    if expected.mp4:
        samples = audio_track_length(path).samples
    else:
        samples = decoded_samples(path)

    problems = []
    if stream.codec != expected.codec:
        problems.append(f"codec {stream.codec}, expected {expected.codec}")
    if stream.sample_rate != expected.sample_rate:
        problems.append(f"{stream.sample_rate} Hz, expected {expected.sample_rate} Hz")
    if len(chapters) != expected.chapters:
        problems.append(f"{len(chapters)} chapters, expected {expected.chapters}")
    if abs(samples - expected.samples) > expected.tolerance:
        problems.append(
            f"{samples} samples, expected {expected.samples} within {expected.tolerance}"
        )
    if problems:
        raise OutputCheckError(f"{path}: the written file has " + "; ".join(problems))
    logger.info("%s: checked %s at %d Hz, %d chapters, %d samples", path, stream.codec, stream.sample_rate, len(chapters), samples)
