"""Read a finished audio file back with ffmpeg: decoded length and chapter markers."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction

from pipeline.ffmpeg import decode_to_pcm, run_ffmpeg
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
    """Decode ``path`` fully and return its length in samples (at ``sample_rate`` if given)."""
    return len(decode_to_pcm(path, sample_rate)) // SAMPLE_WIDTH_BYTES


def _unescape(value: str) -> str:
    result = []
    characters = iter(value)
    for character in characters:
        result.append(next(characters, "") if character == "\\" else character)
    return "".join(result)


def read_metadata(path: str) -> tuple[dict[str, str], list[ProbedChapter]]:
    """Return the global tags and the chapters of ``path``, read through FFMETADATA."""
    text = run_ffmpeg(["-i", path, "-f", "ffmetadata", "-"]).decode("utf-8")
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
