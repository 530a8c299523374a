"""Single-file HTML and XHTML books: one file is one book, split into chapters at headings.

Chapters start at headings of one level. When the document has exactly one ``h1``
and also deeper headings, the ``h1`` is the book's title and the next level down
starts chapters. Otherwise the highest heading level used starts chapters. Text
before the first chapter heading is a chapter titled by the book title, unless it
holds only headings, which then move into the first chapter. A document without
headings is one chapter. Text extraction follows :mod:`pipeline.ingest.xhtml`.
"""

from __future__ import annotations

import logging
from pathlib import Path

from lxml import etree

from pipeline.errors import InvalidBookError
from pipeline.ingest.safexml import parse_xhtml
from pipeline.ingest.xhtml import (
    Block,
    ChapterDraft,
    collapse_whitespace,
    extract_blocks,
    finish_chapters,
    local_name,
)
from pipeline.records import Book

logger = logging.getLogger(__name__)

MAX_HTML_BYTES = 64 * 1024 * 1024
"""Maximum size of an HTML book file, in bytes (64 MiB)."""

_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_AUTHOR_META_NAMES = ("author", "dc.creator", "dcterms.creator")


def read_html(path: str | Path) -> Book:
    """Read a book stored as one HTML or XHTML file.

    The title comes from ``<title>``, else the single ``h1``, else the file name.
    Authors come from ``<meta name="author">`` or ``dc.creator``. The language comes
    from the ``lang`` or ``xml:lang`` attribute of ``<html>``, else it is ``en``.

    Raises
    ------
    InvalidBookError
        For a file that is too large, declares XML entities, cannot be parsed, or
        has no readable text.
    """
    book = str(path)
    size = Path(path).stat().st_size
    if size > MAX_HTML_BYTES:
        raise InvalidBookError(
            book, f"the file is {size} bytes, more than the limit of {MAX_HTML_BYTES}", "split the book"
        )

    root = parse_xhtml(Path(path).read_bytes(), book, Path(path).name)
    blocks = [item for item in extract_blocks(root) if isinstance(item, Block)]
    title = _head_title(root) or _single_h1(blocks) or Path(path).stem

    chapters = finish_chapters(_split_at_headings(blocks, title), title)
    if not chapters:
        raise InvalidBookError(
            book, "the book contains no readable text", "check that the file has a <body> with text"
        )

    logger.info("read %s: %d chapters", book, len(chapters))
    return Book(
        path=book,
        title=title,
        authors=_authors(root),
        language=(root.get("lang") or root.get(_XML_LANG) or "").strip() or "en",
        chapters=chapters,
    )


def _split_at_headings(blocks: list[Block], title: str) -> list[ChapterDraft]:
    levels = sorted({block.heading for block in blocks if block.heading})
    chapter_level = levels[0] if levels else 0
    if levels[:1] == [1] and len(levels) > 1 and sum(block.heading == 1 for block in blocks) == 1:
        chapter_level = levels[1]

    drafts = [ChapterDraft(title, "")]
    for block in blocks:
        if chapter_level and block.heading == chapter_level:
            drafts.append(ChapterDraft(block.text, f"h{chapter_level}"))
        drafts[-1].blocks.append(block)
    return drafts


def _head_title(root: etree._Element) -> str:
    head = next((child for child in root if local_name(child) == "head"), None)
    title = next((child for child in head if local_name(child) == "title"), None) if head is not None else None
    return collapse_whitespace(title.xpath("string()")) if title is not None else ""


def _single_h1(blocks: list[Block]) -> str:
    h1 = [block.text for block in blocks if block.heading == 1]
    return h1[0] if len(h1) == 1 else ""


def _authors(root: etree._Element) -> tuple[str, ...]:
    names = []
    for meta in root.iter():
        if local_name(meta) == "meta" and (meta.get("name") or "").lower() in _AUTHOR_META_NAMES:
            content = collapse_whitespace(meta.get("content") or "")
            if content and content not in names:
                names.append(content)
    return tuple(names)
