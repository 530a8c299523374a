"""Ingest stage: read an e-book file (EPUB, plain text, Markdown or HTML) into a Book."""

from __future__ import annotations

import logging
import os
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

from lxml import etree

from pipeline.errors import InvalidBookError
from pipeline.ingest.epub import read_epub
from pipeline.ingest.html import read_html
from pipeline.ingest.plaintext import read_markdown, read_text
from pipeline.records import Book

logger = logging.getLogger(__name__)

_READERS: dict[str, Callable[[Path], Book]] = {
    ".epub": read_epub,
    ".txt": read_text,
    ".md": read_markdown,
    ".markdown": read_markdown,
    ".html": read_html,
    ".htm": read_html,
    ".xhtml": read_html,
}

SUPPORTED_SUFFIXES: tuple[str, ...] = tuple(_READERS)
"""File suffixes that :func:`read_book` accepts, compared case-insensitively."""

_LIBRARY_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, etree.LxmlError, UnicodeError, OSError)
"""Library exceptions that read_book turns into InvalidBookError if a reader let one through."""


def read_book(path: str | os.PathLike[str]) -> Book:
    """Read an e-book file into a :class:`~pipeline.records.Book`.

    The file suffix chooses the reader, case-insensitively. ``.epub`` is EPUB 2 or 3,
    and ``.txt`` is plain text, Project Gutenberg files included. ``.md`` and
    ``.markdown`` are Markdown. ``.html``, ``.htm`` and ``.xhtml`` are a whole book in
    one HTML file.

    Parameters
    ----------
    path
        The book file.

    Returns
    -------
    Book
        Metadata and at least one chapter; every chapter has at least one paragraph.

    Raises
    ------
    InvalidBookError
        For every problem with the input: a missing path, a folder, an empty file, an
        unsupported suffix, a damaged or unsafe file, DRM, or a book with no readable
        text. No zipfile, lxml or Unicode error escapes.
    """
    book_path = Path(os.fspath(path))
    reader = _choose_reader(book_path)

    try:
        book = reader(book_path)
    except InvalidBookError:
        raise
    except _LIBRARY_ERRORS as err:
        raise InvalidBookError(
            str(book_path),
            f"the book cannot be read ({type(err).__name__}: {err})",
            "check that the file is intact",
        ) from err

    if not book.chapters:
        raise InvalidBookError(
            str(book_path), "the book contains no readable text", "check that it is not only scanned images"
        )
    return book


def _choose_reader(path: Path) -> Callable[[Path], Book]:
    """Validate the path and return the reader for its suffix."""
    if not path.exists():
        raise InvalidBookError(str(path), "file not found", "check the path")
    if path.is_dir():
        raise InvalidBookError(str(path), "is a folder, not a book file", "give the path of the book file itself")

    suffix = path.suffix.lower()
    reader = _READERS.get(suffix)
    if reader is None:
        supported = ", ".join(SUPPORTED_SUFFIXES)
        raise InvalidBookError(
            str(path),
            f"unsupported file type {suffix or '(no suffix)'!r}",
            f"convert the book to one of: {supported}",
        )

    try:
        size = path.stat().st_size
    except OSError as err:
        raise InvalidBookError(
            str(path), f"the file cannot be read ({err.strerror})", "check its permissions"
        ) from err
    if size == 0:
        raise InvalidBookError(str(path), "the file is empty", "check that the download or copy finished")
    return reader
