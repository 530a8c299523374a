"""Concatenate encoded chapters into the finished audiobook with markers, tags and cover."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from pipeline.ffmpeg import run_ffmpeg
from pipeline.records import Book, ChapterMark

logger = logging.getLogger(__name__)

ISO_639_2 = {
    "ar": "ara", "bg": "bul", "ca": "cat", "cs": "ces", "cy": "cym", "da": "dan", "de": "deu",
    "el": "ell", "en": "eng", "es": "spa", "et": "est", "fa": "fas", "fi": "fin", "fr": "fra",
    "he": "heb", "hi": "hin", "hr": "hrv", "hu": "hun", "id": "ind", "is": "isl", "it": "ita",
    "ja": "jpn", "ko": "kor", "la": "lat", "lt": "lit", "lv": "lav", "nl": "nld", "no": "nor",
    "pl": "pol", "pt": "por", "ro": "ron", "ru": "rus", "sk": "slk", "sl": "slv", "sr": "srp",
    "sv": "swe", "sw": "swa", "th": "tha", "tr": "tur", "uk": "ukr", "vi": "vie", "zh": "zho",
}
"""ISO 639-1 to 639-2 codes, because MP4 stores a stream's language as three letters."""

COVER_SUFFIXES = {"image/jpeg": ".jpg", "image/png": ".png"}
"""Cover types MP4 can carry as attached pictures, with their file suffixes."""


def escape_ffmetadata(value: str) -> str:
    """Escape a value for an FFMETADATA file: ``= ; # \\`` and line breaks."""
    escaped = value.replace("\\", "\\\\")
    for special in ("=", ";", "#"):
        escaped = escaped.replace(special, "\\" + special)
    return escaped.replace("\r", " ").replace("\n", "\\\n")


def render_ffmetadata(book: Book, marks: Sequence[ChapterMark], narrator: str) -> str:
    """Write the book's tags and one CHAPTER block per marker, timed in samples."""
    lines = [";FFMETADATA1"]
    tags = {
        "title": book.title,
        "album": book.title,
        "artist": ", ".join(book.authors),
        "album_artist": ", ".join(book.authors),
        "composer": narrator,
        "genre": "Audiobook",
        "language": book.language,
    }
    lines += [f"{key}={escape_ffmetadata(value)}" for key, value in tags.items() if value]

    for mark in marks:
        lines += [
            "",
            "[CHAPTER]",
            f"TIMEBASE=1/{mark.sample_rate}",
            f"START={mark.start}",
            f"END={mark.start + mark.samples}",
            f"title={escape_ffmetadata(mark.title)}",
        ]
    return "\n".join(lines) + "\n"


def render_concat_list(paths: Sequence[Path]) -> str:
    """Write an ffmpeg concat-demuxer list for ``paths``.

    Each entry gets ``inpoint 0``, which drops the AAC priming packet that every chapter
    file starts with. Without it each join adds one frame of silence and the markers
    drift. Single quotes in a path are closed, escaped and reopened as the concat
    syntax requires; spaces and non-ASCII characters need nothing.
    """
    lines = ["ffconcat version 1.0"]
    for path in paths:
        quoted = str(path.resolve()).replace("'", "'\\''")
        lines += [f"file '{quoted}'", "inpoint 0"]
    return "\n".join(lines) + "\n"


def concatenate_chapters(
    chapter_paths: Sequence[Path],
    book: Book,
    marks: Sequence[ChapterMark],
    narrator: str,
    output: Path,
    work_dir: Path,
) -> None:
    """Stream-copy the chapter files into ``output`` as an M4B, atomically.

    The result is first written to a temporary file beside ``output`` and renamed over it
    only when ffmpeg succeeded, so a failed or interrupted run never leaves half a book.
    """
    concat_list = work_dir / "chapters.ffconcat"
    concat_list.write_text(render_concat_list(chapter_paths), encoding="utf-8")
    metadata = work_dir / "metadata.txt"
    metadata.write_text(render_ffmetadata(book, marks, narrator), encoding="utf-8")

    arguments = ["-f", "concat", "-safe", "0", "-i", str(concat_list), "-i", str(metadata)]
    maps = ["-map", "0:a", "-map_metadata", "1", "-map_chapters", "1"]
    language = ISO_639_2.get(book.language.split("-")[0].lower())
    if language:
        maps += ["-metadata:s:a:0", f"language={language}"]
    suffix = COVER_SUFFIXES.get(book.cover_media_type)
    if book.cover and suffix:
        cover = work_dir / f"cover{suffix}"
        cover.write_bytes(book.cover)
        arguments += ["-i", str(cover)]
        maps += ["-map", "2:v", "-c:v", "copy", "-disposition:v:0", "attached_pic"]
    elif book.cover:
        logger.warning(
            "book %s: cover of type %r cannot go into an M4B; only JPEG and PNG can",
            book.title, book.cover_media_type,
        )

    handle, partial = tempfile.mkstemp(
        prefix=f".{output.stem}.", suffix=".partial.m4b", dir=output.parent
    )
    os.close(handle)
    try:
        run_ffmpeg(
            [*arguments, *maps, "-c:a", "copy", "-movflags", "+faststart", "-brand", "M4B ", "-f", "mp4", "-y", partial]
        )
        os.replace(partial, output)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    logger.info("book %s: wrote %s with %d chapters", book.title, output, len(marks))
