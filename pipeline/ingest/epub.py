"""EPUB 2 and EPUB 3 reading: package metadata, table of contents and chapter text.

Reading policy
--------------
* The package document comes from ``META-INF/container.xml``. Title, authors (every
  ``dc:creator``), language and cover image come from its metadata. Only JPEG and
  PNG covers are returned.
* Chapters come from the EPUB 3 navigation document (the ``nav`` whose ``epub:type``
  is ``toc``), else from the EPUB 2 NCX, else from the spine. Every table-of-contents
  entry with a link starts a chapter where its target is, at every depth, so a part's
  own text before its first child entry is a chapter of its own. Entries without a
  link (``<span>``) only group their children. Chapters follow the spine's reading
  order, and several entries that link into one document split it at their anchors.
* Without a usable table of contents, each spine document is a chapter titled by
  its first heading, else by its ``<title>``, else by the book title.
* Only linear spine documents are read. ``linear="no"`` items (covers, pop-ups,
  solution pages) are skipped even when the table of contents links to them. The
  navigation document is skipped too when a book lists it in the spine.
* Text before the first table-of-contents target (front matter such as a preface
  with no entry) forms a chapter of its own, titled by its first heading or else by
  the book title. Covers, contents pages, title pages and other publisher
  boilerplate give no text (see :mod:`pipeline.ingest.xhtml`), so they form no chapter.
* A spine document that the table of contents does not link to belongs to the
  chapter before it.
* A chapter that holds only headings is merged into the next chapter, and a
  chapter with no text is dropped (see :func:`pipeline.ingest.xhtml.finish_chapters`).
* A spine document missing from the archive is skipped with a warning, and a
  document listed twice in the spine is read once, at its first place.
* Stylesheets and fonts are never read, so missing ones do not matter. A missing
  cover image only leaves the book without a cover.
* Content documents encrypted by ``META-INF/encryption.xml`` mean DRM, and the book
  is rejected. Font obfuscation (IDPF or Adobe) is harmless and ignored.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from lxml import etree

from pipeline.errors import InvalidBookError
from pipeline.ingest.archive import CONTAINER_PATH, SafeZip, encrypted_members, find_package_path, resolve_href
from pipeline.ingest.safexml import parse_html_fragment, parse_xhtml, parse_xml
from pipeline.ingest.xhtml import (
    Anchor,
    ChapterDraft,
    collapse_whitespace,
    element_text,
    epub_types,
    extract_blocks,
    finish_chapters,
    first_heading_text,
    local_name,
)
from pipeline.records import Book, Chapter

logger = logging.getLogger(__name__)

CONTENT_MEDIA_TYPES = frozenset({"application/xhtml+xml", "text/html"})
"""Spine media types that are read as text."""

COVER_MEDIA_TYPES = frozenset({"image/jpeg", "image/png"})
"""Cover image types that are returned, because audiobook containers embed only these."""


@dataclass(frozen=True)
class ManifestItem:
    """One file of the package, with its path inside the archive."""

    id: str
    path: str
    media_type: str
    properties: frozenset[str]


@dataclass(frozen=True)
class TocEntry:
    """A table-of-contents entry that links into the text."""

    title: str
    path: str
    fragment: str


@dataclass
class Package:
    """Metadata, manifest and spine from the package document (OPF)."""

    path: str
    title: str
    authors: tuple[str, ...]
    language: str
    cover_id: str
    manifest: dict[str, ManifestItem]
    spine: list[tuple[str, bool]]
    ncx_id: str
    year: str = ""
    description: str = ""


def read_epub(path: str | Path) -> Book:
    """Read an EPUB 2 or EPUB 3 file into a :class:`Book`.

    The reading policy is in this module's docstring.

    Raises
    ------
    InvalidBookError
        For a file that is not a readable zip archive, lacks ``container.xml`` or the
        package document, is DRM-encrypted, contains unsafe XML or names, passes an
        archive limit, or has no readable text.
    """
    book = str(path)
    with SafeZip.open(book) as archive:
        encrypted = encrypted_members(archive, book)
        package = _read_package(archive, book)
        toc = _read_toc(archive, book, package)
        chapters = _build_chapters(archive, book, package, toc)
        cover, cover_type = _read_cover(archive, book, package, encrypted)
    if not chapters:
        raise InvalidBookError(book, "the book contains no readable text", "check that it is not only images")

    logger.info("read %s: %d chapters, %d table-of-contents entries", book, len(chapters), len(toc))
    return Book(
        path=book,
        title=package.title or Path(book).stem,
        authors=package.authors,
        language=package.language,
        chapters=chapters,
        cover=cover,
        cover_media_type=cover_type,
        year=package.year,
        description=package.description,
    )


def _read_package(archive: SafeZip, book: str) -> Package:
    opf_path = find_package_path(archive, book)
    data = archive.read_optional(opf_path)
    if data is None:
        opf_path = unquote(opf_path)
        data = archive.read_optional(opf_path)
    if data is None:
        raise InvalidBookError(
            book,
            f"the package document {opf_path} named in {CONTAINER_PATH} is missing",
            "re-export the book as EPUB",
        )

    root = parse_xml(data, book, opf_path)
    if local_name(root) != "package":
        raise InvalidBookError(book, f"{opf_path} is not an OPF package document", "re-export the book as EPUB")

    metadata = _child(root, "metadata")
    manifest = _read_manifest(root, opf_path)
    spine_element = _child(root, "spine")
    return Package(
        path=opf_path,
        title=_main_title(metadata),
        authors=_dc_values(metadata, "creator"),
        language=next(iter(_dc_values(metadata, "language")), "") or "en",
        cover_id=_cover_id(metadata, manifest),
        manifest=manifest,
        spine=_read_spine(spine_element),
        ncx_id=spine_element.get("toc", "") if spine_element is not None else "",
        year=next(iter(_dc_values(metadata, "date")), ""),
        description=_plain_text(next(iter(_dc_values(metadata, "description")), ""), book, opf_path),
    )


def _plain_text(value: str, book: str, opf_path: str) -> str:
    """Strip the HTML markup that many publishers put, escaped, into ``dc:description``."""
    if "<" not in value:
        return value
    spaced = re.sub(r"(?i)(</(p|div|li|h[1-6])>|<br\s*/?>)", r"\1 ", value)
    try:
        fragment = parse_html_fragment(spaced, book, f"the description in {opf_path}")
    except InvalidBookError:
        return collapse_whitespace(re.sub(r"<[^>]*>", " ", value))
    return collapse_whitespace(fragment.text_content())


def _child(parent: etree._Element | None, name: str) -> etree._Element | None:
    if parent is None:
        return None
    return next((child for child in parent if local_name(child) == name), None)


def _dc_values(metadata: etree._Element | None, name: str) -> tuple[str, ...]:
    if metadata is None:
        return ()
    values = (collapse_whitespace(el.xpath("string()")) for el in metadata if local_name(el) == name)
    return tuple(dict.fromkeys(value for value in values if value))


def _main_title(metadata: etree._Element | None) -> str:
    """Return the EPUB 3 main title (``title-type`` refinement), else the first ``dc:title``."""
    if metadata is None:
        return ""

    main_ids = {
        (meta.get("refines") or "").lstrip("#")
        for meta in metadata
        if local_name(meta) == "meta"
        and meta.get("property") == "title-type"
        and (meta.text or "").strip() == "main"
    }
    titles = [el for el in metadata if local_name(el) == "title" and collapse_whitespace(el.xpath("string()"))]
    main = [el for el in titles if el.get("id") in main_ids]
    chosen = (main or titles or [None])[0]
    return collapse_whitespace(chosen.xpath("string()")) if chosen is not None else ""


def _read_manifest(root: etree._Element, opf_path: str) -> dict[str, ManifestItem]:
    items = {}
    manifest = _child(root, "manifest")
    for element in manifest if manifest is not None else ():
        item_id, href = element.get("id"), element.get("href")
        if local_name(element) != "item" or not item_id or not href:
            continue
        resolved = resolve_href(opf_path, href)
        if resolved is None:
            logger.debug("manifest item %s is outside the book (%s), so it is ignored", item_id, href)
            continue
        items[item_id] = ManifestItem(
            id=item_id,
            path=resolved[0],
            media_type=(element.get("media-type") or "").strip().lower(),
            properties=frozenset((element.get("properties") or "").split()),
        )
    return items


def _read_spine(spine: etree._Element | None) -> list[tuple[str, bool]]:
    if spine is None:
        return []
    return [
        (itemref.get("idref", ""), (itemref.get("linear") or "yes").strip() != "no")
        for itemref in spine
        if local_name(itemref) == "itemref"
    ]


def _cover_id(metadata: etree._Element | None, manifest: dict[str, ManifestItem]) -> str:
    """Find the cover image: EPUB 3 ``cover-image`` property, else EPUB 2 ``<meta name="cover">``."""
    for item in manifest.values():
        if "cover-image" in item.properties:
            return item.id

    for meta in metadata if metadata is not None else ():
        if local_name(meta) == "meta" and meta.get("name") == "cover":
            content = (meta.get("content") or "").strip()
            if content in manifest:
                return content
            by_href = [item.id for item in manifest.values() if item.path.endswith(content)]
            return by_href[0] if content and by_href else ""
    return ""


def _read_cover(
    archive: SafeZip, book: str, package: Package, encrypted: frozenset[str]
) -> tuple[bytes | None, str]:
    item = package.manifest.get(package.cover_id)
    if item is None or item.path in encrypted:
        return None, ""
    if item.media_type not in COVER_MEDIA_TYPES:
        logger.info("cover image %s of %s is %s, not JPEG or PNG, so it is not used", item.path, book, item.media_type)
        return None, ""

    data = archive.read_optional(item.path)
    if data is None:
        logger.warning("cover image %s is missing from %s; the book has no cover", item.path, book)
        return None, ""
    return data, item.media_type


def _read_toc(archive: SafeZip, book: str, package: Package) -> list[TocEntry]:
    """Return the entries of the nav document's toc, else of the NCX, else nothing."""
    nav = next((item for item in package.manifest.values() if "nav" in item.properties), None)
    if nav is not None:
        entries = _read_nav(archive, book, nav)
        if entries:
            return entries

    ncx = package.manifest.get(package.ncx_id) or next(
        (item for item in package.manifest.values() if item.media_type == "application/x-dtbncx+xml"), None
    )
    if ncx is not None:
        return _read_ncx(archive, book, ncx)
    return []


def _read_nav(archive: SafeZip, book: str, nav: ManifestItem) -> list[TocEntry]:
    data = archive.read_optional(nav.path)
    if data is None:
        logger.warning("navigation document %s is missing from %s", nav.path, book)
        return []

    root = parse_xhtml(data, book, nav.path)
    toc = next((el for el in root.iter() if local_name(el) == "nav" and "toc" in epub_types(el)), None)
    top_list = next((el for el in toc.iter() if local_name(el) == "ol"), None) if toc is not None else None
    entries: list[TocEntry] = []
    if top_list is not None:
        _walk_nav_list(top_list, nav.path, entries)
    return entries


def _walk_nav_list(ordered_list: etree._Element, base: str, entries: list[TocEntry]) -> None:
    for item in ordered_list:
        if local_name(item) != "li":
            continue
        for child in item:
            name = local_name(child)
            if name == "a" and child.get("href"):
                _add_entry(entries, element_text(child), base, child.get("href", ""))
            elif name == "ol":
                _walk_nav_list(child, base, entries)


def _read_ncx(archive: SafeZip, book: str, ncx: ManifestItem) -> list[TocEntry]:
    data = archive.read_optional(ncx.path)
    if data is None:
        logger.warning("NCX %s is missing from %s", ncx.path, book)
        return []

    entries: list[TocEntry] = []
    for point in parse_xml(data, book, ncx.path).iter():
        if local_name(point) != "navpoint":
            continue
        label = _child(point, "navlabel")
        content = _child(point, "content")
        title = collapse_whitespace(label.xpath("string()")) if label is not None else ""
        if content is not None and content.get("src"):
            _add_entry(entries, title, ncx.path, content.get("src", ""))
    return entries


def _add_entry(entries: list[TocEntry], title: str, base: str, href: str) -> None:
    resolved = resolve_href(base, href)
    if resolved is None:
        logger.debug("table-of-contents entry %r links outside the book (%s)", title, href)
        return
    entries.append(TocEntry(title=title, path=resolved[0], fragment=resolved[1]))


def _reading_order(package: Package, book: str) -> list[ManifestItem]:
    """Return the linear spine documents that are read as text, in spine order."""
    documents = []
    for idref, linear in package.spine:
        item = package.manifest.get(idref)
        if item is None:
            logger.warning("spine item %s of %s is not in the manifest; skipping it", idref, book)
        elif any(document.path == item.path for document in documents):
            logger.warning("spine item %s (%s) of %s is listed twice; reading it once", idref, item.path, book)
        elif not linear:
            logger.debug("skipping non-linear spine item %s (%s)", idref, item.path)
        elif "nav" in item.properties or item.media_type not in CONTENT_MEDIA_TYPES:
            logger.debug("skipping spine item %s (%s, %s)", idref, item.path, item.media_type)
        else:
            documents.append(item)
    return documents


def _build_chapters(
    archive: SafeZip, book: str, package: Package, toc: list[TocEntry]
) -> tuple[Chapter, ...]:
    documents = _reading_order(package, book)
    readable = {item.path for item in documents}
    entries_by_path: dict[str, list[TocEntry]] = defaultdict(list)
    for entry in toc:
        if entry.path in readable:
            entries_by_path[entry.path].append(entry)

    front = ChapterDraft(title="", source="")
    drafts = [front]
    for item in documents:
        root = _load_document(archive, book, item)
        if root is None:
            continue

        entries = entries_by_path.get(item.path, [])
        if entries_by_path:
            _split_at_entries(root, item.path, entries, drafts)
        else:
            _add_spine_chapter(root, item.path, drafts)

    front.title = first_heading_text(list(front.blocks)) or package.title
    return finish_chapters(drafts, package.title or Path(book).stem)


def _load_document(archive: SafeZip, book: str, item: ManifestItem) -> etree._Element | None:
    """Parse one spine document, or return None with a warning when it is missing or empty."""
    data = archive.read_optional(item.path)
    if data is None:
        logger.warning("spine item %s (%s) is missing from %s; skipping it", item.id, item.path, book)
        return None
    if not data.strip():
        logger.warning("spine item %s (%s) in %s is an empty file; skipping it", item.id, item.path, book)
        return None
    return parse_xhtml(data, book, item.path)


def _split_at_entries(
    root: etree._Element, path: str, entries: list[TocEntry], drafts: list[ChapterDraft]
) -> None:
    """Append one document's text to the drafts, starting a draft at each entry's target."""
    by_fragment: dict[str, list[TocEntry]] = defaultdict(list)
    for entry in entries:
        if entry.fragment:
            by_fragment[entry.fragment].append(entry)
        else:
            drafts.append(ChapterDraft(entry.title, path))

    for item in extract_blocks(root, frozenset(by_fragment)):
        if isinstance(item, Anchor):
            for entry in by_fragment.pop(item.id, []):
                drafts.append(ChapterDraft(entry.title, f"{path}#{entry.fragment}"))
        else:
            drafts[-1].source = drafts[-1].source or path
            drafts[-1].blocks.append(item)

    for fragment, missed in by_fragment.items():
        logger.warning(
            "table-of-contents entry %r links to %s#%s, which does not exist; "
            "its text stays in the chapter before",
            missed[0].title,
            path,
            fragment,
        )


def _add_spine_chapter(root: etree._Element, path: str, drafts: list[ChapterDraft]) -> None:
    """Make one document a chapter titled by its first heading, else its ``<title>``."""
    items = extract_blocks(root)
    head = _child(root, "head")
    title_element = _child(head, "title")
    head_title = collapse_whitespace(title_element.xpath("string()")) if title_element is not None else ""

    draft = ChapterDraft(first_heading_text(items) or head_title, path)
    draft.blocks.extend(item for item in items if not isinstance(item, Anchor))
    drafts.append(draft)
