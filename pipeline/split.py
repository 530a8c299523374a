"""Write one audio file per chapter and an M3U playlist into a folder (``--split-chapters``)."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from pipeline.filenames import safe_file_name, unique_file_names
from pipeline.formats import OutputFormat, encoder_arguments
from pipeline.probe import check_output
from pipeline.publish import (
    book_tags,
    cover_arguments,
    default_mode,
    expected_output,
    finish_tags,
    render_ffmetadata,
    write_checked,
)
from pipeline.records import Book, ChapterMark

logger = logging.getLogger(__name__)

PLAYLIST_SUFFIX = ".m3u8"
"""Suffix of the playlist: an M3U playlist whose text is UTF-8."""


@dataclass(frozen=True)
class PlaylistEntry:
    """One line pair of an extended M3U playlist."""

    path: str
    """File path relative to the playlist, with ``/`` separators."""

    title: str
    """Title shown by players."""

    seconds: float
    """Length of the file in seconds."""


def render_m3u(entries: Sequence[PlaylistEntry]) -> str:
    """Write an extended M3U playlist: ``#EXTM3U``, then ``#EXTINF:seconds,title`` and the path.

    Lengths are whole seconds, rounded, as the original M3U extension defines them; line
    breaks in titles become spaces.
    """
    lines = ["#EXTM3U"]
    for entry in entries:
        title = " ".join(entry.title.split())
        lines += [f"#EXTINF:{round(entry.seconds)},{title}", entry.path]
    return "\n".join(lines) + "\n"


def chapter_file_names(marks: Sequence[ChapterMark], suffix: str) -> list[str]:
    """Return ``001 - Title.suffix`` for each marker, safe on every common OS and unique."""
    width = max(3, len(str(len(marks))))
    return unique_file_names(
        [f"{mark.index:0{width}d} - {safe_file_name(mark.title)}{suffix}" for mark in marks]
    )


def _write_chapter_file(
    source: Path, target: Path, book: Book, mark: ChapterMark, narrator: str,
    output_format: OutputFormat, bitrate: str, count: int, work_dir: Path,
) -> None:
    """Tag one chapter file with the book's metadata and its track number, and check it."""
    tags = book_tags(book, narrator, output_format) | {"title": mark.title, "track": f"{mark.index}/{count}"}
    metadata = work_dir / f".metadata-{mark.index}.txt"
    metadata.write_text(render_ffmetadata(tags, ()), encoding="utf-8")

    cover_inputs, cover_maps = cover_arguments(book, output_format, work_dir, 2)
    stream_tags = ["-map_metadata:s:a:0", "1:g"] if output_format.stream_tags else []
    codec = ["-c:a", "copy"] if output_format.stream_copy else encoder_arguments(output_format, bitrate)
    arguments = [
        "-i", str(source), "-i", str(metadata), *cover_inputs,
        "-map", "0:a", "-map_metadata", "1", "-map_chapters", "-1", *cover_maps, *stream_tags,
        *codec, *output_format.muxer_options, "-f", output_format.muxer,
    ]
    alone = replace(mark, start=0)

    def check(partial: str) -> None:
        finish_tags(partial, book, (), output_format)
        check_output(partial, expected_output(output_format, [alone], with_chapters=False))

    write_checked(arguments, target, check)
    metadata.unlink()


def _replace_folder(staging: Path, folder: Path) -> None:
    """Rename ``staging`` to ``folder``, replacing an existing ``folder`` only once the new one is in place."""
    old = None
    if folder.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".old", dir=folder.parent))
        os.replace(folder, old / folder.name)
    os.replace(staging, folder)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def publish_chapter_files(
    chapter_paths: Sequence[Path],
    book: Book,
    marks: Sequence[ChapterMark],
    narrator: str,
    folder: Path,
    work_dir: Path,
    output_format: OutputFormat,
    bitrate: str = "",
) -> dict[int, Path]:
    """Write each chapter as its own file plus a playlist into ``folder``, atomically.

    The files are written and checked in a temporary folder beside ``folder``, which is
    renamed into place only when every file passed its check.

    Returns
    -------
    dict
        The path of each chapter's file in ``folder``, by chapter index.
    """
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".partial", dir=folder.parent))
    try:
        names = chapter_file_names(marks, output_format.suffix)
        for source, mark, name in zip(chapter_paths, marks, names):
            _write_chapter_file(
                source, staging / name, book, mark, narrator, output_format, bitrate, len(marks), work_dir
            )

        entries = [PlaylistEntry(name, mark.title, mark.duration) for mark, name in zip(marks, names)]
        playlist = staging / f"{safe_file_name(book.title, fallback='playlist')}{PLAYLIST_SUFFIX}"
        playlist.write_text(render_m3u(entries), encoding="utf-8")
        os.chmod(staging, default_mode(directory=True))
        _replace_folder(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)

    logger.info("book %s: wrote %d chapter files and a playlist into %s", book.title, len(marks), folder)
    return {mark.index: folder / name for mark, name in zip(marks, names)}
