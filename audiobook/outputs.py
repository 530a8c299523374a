"""Outputs of a finished run: the audiobook or chapter folder, its metadata and captions."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from pipeline.captions import sentence_cues, write_captions
from pipeline.formats import get_format
from pipeline.publish import publish_book
from pipeline.records import Book, ChapterMark, Sentence, SynthesisSettings
from pipeline.split import publish_chapter_files

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MetadataOverrides:
    """Book metadata given on the command line; empty values keep the book's own."""

    title: str = ""
    """Title of the audiobook."""

    authors: tuple[str, ...] = ()
    """Author names."""

    narrator: str = ""
    """Narrator tag; empty means the identity of the voice that spoke."""

    year: str = ""
    """Publication year or date."""

    description: str = ""
    """Summary of the book."""

    cover: bytes | None = None
    """Cover image bytes, JPEG or PNG."""

    cover_media_type: str = ""
    """MIME type of ``cover``."""


@dataclass(frozen=True)
class OutputRequest:
    """Destination and shape of a run's result."""

    path: Path
    """The audiobook file, or the folder of chapter files with ``split_chapters``."""

    split_chapters: bool = False
    """Write one file per chapter and an M3U playlist into the folder ``path``."""

    captions: str = ""
    """Caption sidecar format: ``srt``, ``vtt``, or empty for none."""

    metadata: MetadataOverrides = MetadataOverrides()
    """Metadata that replaces the book's own."""


def apply_overrides(book: Book, overrides: MetadataOverrides) -> Book:
    """Return ``book`` with every non-empty value of ``overrides`` in place of its own."""
    changes: dict[str, object] = {
        "title": overrides.title,
        "authors": overrides.authors,
        "year": overrides.year,
        "description": overrides.description,
    }
    if overrides.cover:
        changes |= {"cover": overrides.cover, "cover_media_type": overrides.cover_media_type}
    return replace(book, **{name: value for name, value in changes.items() if value})


def sentence_texts(sentences: Sequence[Sequence[Sentence]]) -> dict[tuple[int, int], str]:
    """Map ``(chapter index, sentence index)`` to each sentence's printed text."""
    return {
        (sentence.chapter_index, sentence.index): sentence.text
        for chapter in sentences
        for sentence in chapter
    }


def publish_outputs(
    paths: Mapping[int, Path],
    book: Book,
    marks: Sequence[ChapterMark],
    sentences: Sequence[Sequence[Sentence]],
    narrator: str,
    settings: SynthesisSettings,
    request: OutputRequest,
    work_dir: Path,
) -> list[Path]:
    """Write the audiobook (or chapter folder) and its captions; return the files written.

    Raises
    ------
    FfmpegError
        When ffmpeg fails.
    OutputCheckError
        When a written file does not match what the run produced; it is removed.
    """
    output_format = get_format(settings.output_format)
    ordered = [paths[mark.index] for mark in marks]
    texts = sentence_texts(sentences) if request.captions else {}

    if not request.split_chapters:
        publish_book(ordered, book, marks, narrator, request.path, work_dir, output_format, settings.audio_bitrate)
        written = [request.path]
        if request.captions:
            sidecar = request.path.with_suffix(f".{request.captions}")
            write_captions(sidecar, sentence_cues(marks, texts), request.captions)
            written.append(sidecar)
        return written

    files = publish_chapter_files(
        ordered, book, marks, narrator, request.path, work_dir, output_format, settings.audio_bitrate
    )
    written = list(files.values())
    for mark in marks if request.captions else ():
        sidecar = files[mark.index].with_suffix(f".{request.captions}")
        write_captions(sidecar, sentence_cues([mark], texts, origin=mark.start), request.captions)
        written.append(sidecar)
    return written
