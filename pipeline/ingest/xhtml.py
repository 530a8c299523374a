"""Readable text from XHTML content documents, and the assembly of that text into chapters.

What is read aloud
------------------
Block-level elements (``p``, ``div``, ``li``, ``h1``-``h6``, ``blockquote``, ``dd``,
``dt``, ``td``, ``pre`` and the like) each give paragraphs. A container such as
``section`` or ``article`` contributes only its own direct text, because its child
blocks give their own paragraphs, so no text is read twice. Inline elements and
images do not break a paragraph, and the text around an image is kept. ASCII and
Unicode whitespace inside a paragraph collapses to single spaces, except no-break
spaces, which French typography needs.

What is skipped
---------------
* ``head``, ``script``, ``style``, ``template``, ``nav``, ``svg``, ``math`` and media elements.
* Ruby readings (``rt``, ``rp``, ``rtc``), so only the base text is read.
* Elements with the ``hidden`` attribute, ``aria-hidden="true"`` or an inline
  ``display: none`` style.
* Pop-up notes: ``aside`` with an ``epub:type`` of footnote, endnote, note, rearnote
  or annotation.
* Page and line numbers printed in the text, marked with a class in
  :data:`SKIPPED_CLASSES`.
* Spacer paragraphs that hold only whitespace, soft hyphens or zero-width characters.
* Elements whose ``epub:type`` is in :data:`SKIPPED_EPUB_TYPES`. These are note
  references, page-break markers, back links, tables of contents and publisher
  boilerplate (cover, title and half-title pages, imprint, colophon, copyright page).
"""

from __future__ import annotations

import html.entities
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from lxml import etree

from pipeline.records import Chapter

logger = logging.getLogger(__name__)

EPUB_TYPE_ATTRIBUTE = "{http://www.idpf.org/2007/ops}type"
"""``epub:type`` as the XML parser names it. The HTML parser keeps the literal name ``epub:type``."""

SKIPPED_EPUB_TYPES = frozenset(
    {
        "noteref",
        "pagebreak",
        "backlink",
        "toc",
        "landmarks",
        "page-list",
        "loi",
        "lot",
        "lov",
        "loa",
        "cover",
        "titlepage",
        "halftitlepage",
        "imprint",
        "colophon",
        "copyright-page",
    }
)
"""``epub:type`` values whose elements are not read: navigation aids and publisher boilerplate."""

SKIPPED_CLASSES = frozenset({"pagenum", "pageno", "page-number", "lnum", "linenum", "line-number"})
"""CSS classes that conventionally mark printed page or line numbers, which are not read.

Project Gutenberg's HTML uses ``pagenum`` and the IDPF sample books use ``lnum``.
"""

_NOTE_EPUB_TYPES = frozenset({"footnote", "endnote", "note", "rearnote", "annotation"})

_SKIPPED_TAGS = frozenset(
    {
        "head", "script", "style", "template", "noscript", "nav", "svg", "math",
        "rt", "rp", "rtc", "audio", "video", "object", "iframe", "canvas", "embed",
        "map", "select", "textarea", "button", "input",
    }
)

_BLOCK_TAGS = frozenset(
    {
        "html", "body", "main", "section", "article", "header", "footer", "aside",
        "div", "p", "li", "ol", "ul", "dl", "dd", "dt", "blockquote", "pre",
        "figure", "figcaption", "table", "thead", "tbody", "tfoot", "tr", "td", "th",
        "caption", "hgroup", "address", "details", "summary", "hr", "center",
        "h1", "h2", "h3", "h4", "h5", "h6",
    }
)

_HEADING_LEVELS = {f"h{level}": level for level in range(1, 7)}

# Whitespace other than the no-break spaces U+00A0 and U+202F.
_WHITESPACE = re.compile(r"[^\S\u00a0\u202f]+")

_HIDDEN_STYLE = re.compile(r"display\s*:\s*none", re.IGNORECASE)

# Soft hyphens and zero-width characters, which some books use for empty spacer paragraphs.
_INVISIBLE = re.compile(r"[\s\u00ad\u200b-\u200d\u2060\ufeff]*")


@dataclass(frozen=True)
class Block:
    """One paragraph of readable text."""

    text: str
    """The paragraph with its whitespace collapsed."""

    heading: int = 0
    """Heading level 1-6 for ``h1``-``h6``, else 0."""


@dataclass(frozen=True)
class Anchor:
    """The position of an element whose ``id`` a table of contents links to."""

    id: str


def collapse_whitespace(text: str) -> str:
    """Return ``text`` with runs of whitespace turned into one space and the ends stripped."""
    return _WHITESPACE.sub(" ", text).strip()


def local_name(element: etree._Element) -> str:
    """Return the tag without its namespace, lower-cased (``p`` for ``{xhtml}p``)."""
    tag = element.tag
    if not isinstance(tag, str):
        return ""
    return etree.QName(tag).localname.lower()


def epub_types(element: etree._Element) -> set[str]:
    """Return the element's ``epub:type`` tokens and its DPUB-ARIA roles without ``doc-``.

    ``role="doc-noteref"`` therefore counts as ``epub:type="noteref"``. Both
    attribute spellings are read, because the HTML parser keeps ``epub:type`` literally.
    """
    value = element.get(EPUB_TYPE_ATTRIBUTE) or element.get("epub:type") or ""
    roles = [role.removeprefix("doc-") for role in (element.get("role") or "").split() if role.startswith("doc-")]
    return set(value.split()) | set(roles)


def element_text(element: etree._Element) -> str:
    """Return an element's text without ruby readings, whitespace collapsed (for titles)."""
    parts = [block.text for block in extract_blocks(element) if isinstance(block, Block)]
    return collapse_whitespace(" ".join(parts))


def _is_skipped(element: etree._Element, name: str) -> bool:
    if name in _SKIPPED_TAGS:
        return True
    if element.get("hidden") is not None or element.get("aria-hidden") == "true":
        return True
    if _HIDDEN_STYLE.search(element.get("style") or ""):
        return True

    if SKIPPED_CLASSES.intersection((element.get("class") or "").split()):
        return True

    types = epub_types(element)
    if types & SKIPPED_EPUB_TYPES:
        return True
    return name == "aside" and bool(types & _NOTE_EPUB_TYPES)


@dataclass
class _Extractor:
    anchor_ids: frozenset[str]
    output: list[Block | Anchor] = field(default_factory=list)
    buffer: list[str] = field(default_factory=list)

    def flush(self, heading: int = 0) -> None:
        text = collapse_whitespace("".join(self.buffer))
        self.buffer.clear()
        if text and not _INVISIBLE.fullmatch(text):
            self.output.append(Block(text, heading))

    def mark_anchors(self, element: etree._Element) -> None:
        element_id = element.get("id") or (element.get("name") if local_name(element) == "a" else None)
        if element_id and element_id in self.anchor_ids:
            self.flush()
            self.output.append(Anchor(element_id))

    def mark_skipped_anchors(self, element: etree._Element) -> None:
        # An anchor inside a skipped element still starts its chapter at this point.
        if not self.anchor_ids:
            return
        for descendant in element.iter():
            if isinstance(descendant.tag, str):
                self.mark_anchors(descendant)


def extract_blocks(root: etree._Element, anchor_ids: frozenset[str] = frozenset()) -> list[Block | Anchor]:
    """Return the readable paragraphs under ``root`` in document order.

    Parameters
    ----------
    root
        An element from :func:`pipeline.ingest.safexml.parse_xhtml`, usually the root.
    anchor_ids
        Element ids to report as :class:`Anchor` markers where they occur, so a
        caller can split the text at table-of-contents targets. An anchor in the
        middle of a paragraph splits that paragraph.

    Returns
    -------
    Blocks and anchors interleaved in reading order. The walk is iterative, so deep
    nesting cannot exhaust Python's recursion limit.
    """
    extractor = _Extractor(anchor_ids)
    extractor.mark_anchors(root)
    extractor.buffer.append(root.text or "")
    stack: list[tuple[etree._Element, Iterator[etree._Element]]] = [(root, iter(root))]

    while stack:
        parent, children = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
            _close_element(extractor, parent, is_root=not stack)
            continue

        _open_element(extractor, child, stack)

    return extractor.output


def _open_element(
    extractor: _Extractor,
    child: etree._Element,
    stack: list[tuple[etree._Element, Iterator[etree._Element]]],
) -> None:
    if not isinstance(child.tag, str):
        # A comment or processing instruction contributes only its tail. An unresolved
        # entity reference (such as &nbsp; without a loaded DTD) becomes its HTML character.
        if isinstance(child, etree._Entity):
            extractor.buffer.append(html.entities.html5.get(f"{child.name};", " "))
        extractor.buffer.append(child.tail or "")
        return

    name = local_name(child)
    if _is_skipped(child, name):
        extractor.mark_skipped_anchors(child)
        if name in _BLOCK_TAGS:
            extractor.flush()
        extractor.buffer.append(child.tail or "")
        return

    if name in _BLOCK_TAGS:
        extractor.flush()
    elif name == "br":
        extractor.buffer.append(" ")
    extractor.mark_anchors(child)
    extractor.buffer.append(child.text or "")
    stack.append((child, iter(child)))


def _close_element(extractor: _Extractor, element: etree._Element, *, is_root: bool) -> None:
    name = local_name(element)
    if name in _BLOCK_TAGS:
        extractor.flush(_HEADING_LEVELS.get(name, 0))
    if not is_root:
        extractor.buffer.append(element.tail or "")
    else:
        extractor.flush()


@dataclass
class ChapterDraft:
    """A chapter being assembled: its title, where it starts, and its paragraphs so far."""

    title: str
    source: str
    blocks: list[Block] = field(default_factory=list)


def finish_chapters(drafts: list[ChapterDraft], fallback_title: str) -> tuple[Chapter, ...]:
    """Turn drafts into numbered chapters, merging heading-only drafts and dropping empty ones.

    A draft that contains only headings (a part title page, or a part's heading before
    its first child chapter) is not a chapter of its own. Its headings move to the
    start of the next draft that has text, so they are still read, in order. A
    heading-only draft at the end of the book stays a chapter.

    Parameters
    ----------
    drafts
        Drafts in reading order.
    fallback_title
        Title for a draft whose table-of-contents entry had no text and whose text
        has no heading.
    """
    last_with_text = max((position for position, draft in enumerate(drafts) if draft.blocks), default=-1)
    carried: list[Block] = []
    nonempty: list[ChapterDraft] = []
    for position, draft in enumerate(drafts):
        blocks = carried + draft.blocks
        if all(block.heading for block in blocks) and position < last_with_text:
            carried = blocks
            continue

        carried = []
        if blocks:
            nonempty.append(ChapterDraft(draft.title, draft.source, blocks))

    chapters = []
    for index, draft in enumerate(nonempty, start=1):
        title = draft.title or _first_heading(draft.blocks) or fallback_title
        paragraphs = tuple(block.text for block in draft.blocks)
        chapters.append(Chapter(index=index, title=title, paragraphs=paragraphs, source=draft.source))
    return tuple(chapters)


def _first_heading(blocks: list[Block]) -> str:
    for block in blocks:
        if block.heading:
            return block.text
    return ""


def first_heading_text(items: list[Block | Anchor]) -> str:
    """Return the text of the first heading among ``items``, or an empty string."""
    return _first_heading([item for item in items if isinstance(item, Block)])
