"""Tags that ffmpeg cannot write: chapter comments in FLAC and Opus, cover pictures in Ogg Opus."""

from __future__ import annotations

import base64
import logging
from collections.abc import Sequence

import mutagen
from mutagen.flac import FLAC, Picture
from mutagen.oggopus import OggOpus

from pipeline.records import ChapterMark

logger = logging.getLogger(__name__)

FRONT_COVER = 3
"""Picture type of a front cover in FLAC picture blocks."""


def milliseconds(samples: int, sample_rate: int) -> int:
    """Convert a sample position to whole milliseconds, rounded to nearest."""
    return (samples * 1000 + sample_rate // 2) // sample_rate


def chapter_timestamp(samples: int, sample_rate: int) -> str:
    """Format a sample position as ``HH:MM:SS.mmm``, the time format of chapter comments."""
    seconds, millis = divmod(milliseconds(samples, sample_rate), 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}"


def write_vorbis_chapters(path: str, marks: Sequence[ChapterMark]) -> None:
    """Add ``CHAPTER001=HH:MM:SS.mmm`` and ``CHAPTER001NAME=title`` comments to a FLAC or Ogg Opus file.

    ffmpeg reads these comments back as chapters from both containers.
    """
    audio = mutagen.File(path)
    if not isinstance(audio, (FLAC, OggOpus)):
        raise ValueError(f"{path} is not a FLAC or Ogg Opus file, so it cannot take chapter comments")
    for number, mark in enumerate(marks, start=1):
        audio[f"CHAPTER{number:03d}"] = chapter_timestamp(mark.start, mark.sample_rate)
        audio[f"CHAPTER{number:03d}NAME"] = mark.title
    audio.save()
    logger.debug("%s: wrote %d chapter comments", path, len(marks))


def add_ogg_cover(path: str, image: bytes, media_type: str) -> None:
    """Store ``image`` as the front cover of an Ogg Opus file (a METADATA_BLOCK_PICTURE comment)."""
    picture = Picture()
    picture.type = FRONT_COVER
    picture.mime = media_type
    picture.data = image

    audio = OggOpus(path)
    audio["metadata_block_picture"] = [base64.b64encode(picture.write()).decode("ascii")]
    audio.save()
    logger.debug("%s: added a %s cover of %d bytes", path, media_type, len(image))
