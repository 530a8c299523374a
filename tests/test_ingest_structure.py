"""EPUB structure of messy books: spine order, unlisted and image-only pages, missing files, linear="no"."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from pipeline.ingest import epub, read_book
from tests.fixtures.books import (
    TINY_PNG,
    XHTML,
    ncx_document,
    package_document,
    write_epub,
    xhtml_document,
)

logger = logging.getLogger(__name__)

NAV = ("nav", "nav.xhtml", XHTML, "nav")


def write_spine_book(
    path: Path,
    documents: dict[str, str],
    spine: list[str | tuple[str, bool]],
    toc: list[tuple[str, str]] | None,
    *,
    extra_manifest: Sequence[tuple[str, str, str, str]] = (),
    extra_files: dict[str, str | bytes] | None = None,
) -> Path:
    """Write an EPUB 3 whose manifest ids are the document names without ``.xhtml``.

    ``documents`` maps file names under ``OEBPS/`` to body markup, in manifest order.
    ``toc`` is a list of ``(title, href)`` nav entries, or None for a book without a
    table of contents.
    """
    manifest = [(name.removesuffix(".xhtml"), name, XHTML, "") for name in documents]
    files: dict[str, str | bytes] = {
        f"OEBPS/{name}": xhtml_document(body) for name, body in documents.items()
    }
    if toc is not None:
        items = "".join(f'<li><a href="{href}">{title}</a></li>' for title, href in toc)
        files["OEBPS/nav.xhtml"] = xhtml_document(f'<nav epub:type="toc"><ol>{items}</ol></nav>')
        manifest.append(NAV)
    files["OEBPS/content.opf"] = package_document(manifest + list(extra_manifest), spine)
    files.update(extra_files or {})
    return write_epub(path, files)


def titles(book) -> list[str]:
    return [chapter.title for chapter in book.chapters]


def paragraphs(book) -> list[tuple[str, ...]]:
    return [chapter.paragraphs for chapter in book.chapters]


# Reading order


def test_spine_order_beats_toc_order(tmp_path):
    documents = {"c.xhtml": "<p>Third.</p>", "a.xhtml": "<p>First.</p>", "b.xhtml": "<p>Second.</p>"}
    toc = [("C", "c.xhtml"), ("A", "a.xhtml"), ("B", "b.xhtml")]

    book = read_book(write_spine_book(tmp_path / "book.epub", documents, ["a", "b", "c"], toc))

    assert titles(book) == ["A", "B", "C"]
    assert paragraphs(book) == [("First.",), ("Second.",), ("Third.",)]


def test_spine_order_without_toc(tmp_path):
    documents = {"z.xhtml": "<h1>Last</h1><p>Z.</p>", "y.xhtml": "<h1>First</h1><p>Y.</p>"}

    book = read_book(write_spine_book(tmp_path / "book.epub", documents, ["y", "z"], None))

    assert titles(book) == ["First", "Last"]


def test_duplicate_spine_item_read_once(tmp_path, caplog):
    documents = {"a.xhtml": "<p>Once only.</p>", "b.xhtml": "<p>Next.</p>"}
    toc = [("A", "a.xhtml"), ("B", "b.xhtml")]
    path = write_spine_book(tmp_path / "book.epub", documents, ["a", "b", "a"], toc)

    with caplog.at_level(logging.WARNING, logger="pipeline.ingest"):
        book = read_book(path)

    assert paragraphs(book) == [("Once only.",), ("Next.",)]
    assert "listed twice" in caplog.text


# Documents the table of contents does not list


def test_unlisted_documents_join_preceding_chapter(tmp_path):
    documents = {
        "one.xhtml": "<h1>One</h1><p>One starts.</p>",
        "one-b.xhtml": "<p>One continues.</p>",
        "one-c.xhtml": "<h2>An unlisted section</h2><p>One ends.</p>",
        "two.xhtml": "<h1>Two</h1><p>Two starts.</p>",
        "two-b.xhtml": "<p>Two ends.</p>",
    }
    spine = ["one", "one-b", "one-c", "two", "two-b"]

    toc = [("One", "one.xhtml"), ("Two", "two.xhtml")]

    book = read_book(write_spine_book(tmp_path / "book.epub", documents, spine, toc))

    assert titles(book) == ["One", "Two"]
    assert paragraphs(book)[0] == ("One", "One starts.", "One continues.", "An unlisted section", "One ends.")
    assert paragraphs(book)[1] == ("Two", "Two starts.", "Two ends.")


def test_unlisted_documents_join_with_ncx(tmp_path):
    files = {
        "OEBPS/one.xhtml": xhtml_document("<p>One.</p>"),
        "OEBPS/more.xhtml": xhtml_document("<p>More of one.</p>"),
        "OEBPS/two.xhtml": xhtml_document("<p>Two.</p>"),
        "OEBPS/toc.ncx": ncx_document([("One", "one.xhtml"), ("Two", "two.xhtml")]),
        "OEBPS/content.opf": package_document(
            [
                ("one", "one.xhtml", XHTML, ""),
                ("more", "more.xhtml", XHTML, ""),
                ("two", "two.xhtml", XHTML, ""),
                ("ncx", "toc.ncx", "application/x-dtbncx+xml", ""),
            ],
            ["one", "more", "two"],
            version="2.0",
            ncx_id="ncx",
        ),
    }

    book = read_book(write_epub(tmp_path / "book.epub", files))

    assert paragraphs(book) == [("One.", "More of one."), ("Two.",)]


# Image-only pages


def test_image_only_pages_make_no_chapters(tmp_path):
    documents = {
        "cover.xhtml": '<div><img src="cover.png" alt="Cover of the book"/></div>',
        "svg-cover.xhtml": '<svg xmlns="http://www.w3.org/2000/svg"><image href="cover.png"/></svg>',
        "one.xhtml": "<h1>One</h1><p>Text one.</p>",
        "plate.xhtml": '<figure><img src="plate.png" alt="A map of the harbour"/></figure>',
        "two.xhtml": "<h1>Two</h1><p>Text two.</p>",
    }
    spine = ["cover", "svg-cover", "one", "plate", "two"]
    toc = [("Cover", "cover.xhtml"), ("One", "one.xhtml"), ("Map", "plate.xhtml"), ("Two", "two.xhtml")]
    images = {"OEBPS/cover.png": TINY_PNG, "OEBPS/plate.png": TINY_PNG}

    book = read_book(write_spine_book(tmp_path / "book.epub", documents, spine, toc, extra_files=images))

    assert titles(book) == ["One", "Two"]
    assert paragraphs(book) == [("One", "Text one."), ("Two", "Text two.")]


def test_image_pages_without_toc_skipped(tmp_path):
    documents = {
        "cover.xhtml": '<div><img src="cover.png" alt=""/></div>',
        "one.xhtml": "<h1>One</h1><p>Text one.</p>",
        "plate.xhtml": '<div><img src="plate.png" alt=""/></div>',
    }

    book = read_book(write_spine_book(tmp_path / "book.epub", documents, ["cover", "one", "plate"], None))

    assert titles(book) == ["One"]


def test_spacer_paragraphs_make_no_paragraphs(tmp_path):
    documents = {
        "spacers.xhtml": "<p>&#8203;</p><p>&#160;</p><div>&#173;&#8288;</div><p>\ufeff</p>",
        "one.xhtml": "<p>Text.</p><p>&#8203;</p><p>More\u200btext.</p>",
    }

    book = read_book(write_spine_book(tmp_path / "book.epub", documents, ["spacers", "one"], None))

    assert paragraphs(book) == [("Text.", "More\u200btext.")]


# Missing files


def test_missing_spine_document_warns(tmp_path, caplog):
    documents = {"one.xhtml": "<p>One.</p>", "two.xhtml": "<p>Two.</p>"}
    path = write_spine_book(
        tmp_path / "book.epub",
        documents,
        ["one", "gone", "two"],
        [("One", "one.xhtml"), ("Gone", "gone.xhtml"), ("Two", "two.xhtml")],
        extra_manifest=[("gone", "gone.xhtml", XHTML, "")],
    )

    with caplog.at_level(logging.WARNING, logger="pipeline.ingest"):
        book = read_book(path)

    assert titles(book) == ["One", "Two"]
    assert "OEBPS/gone.xhtml" in caplog.text
    assert "missing" in caplog.text


def test_spine_idref_without_manifest_item_warns(tmp_path, caplog):
    documents = {"one.xhtml": "<p>One.</p>"}
    path = write_spine_book(tmp_path / "book.epub", documents, ["one", "phantom"], None)

    with caplog.at_level(logging.WARNING, logger="pipeline.ingest"):
        book = read_book(path)

    assert paragraphs(book) == [("One.",)]
    assert "phantom" in caplog.text


def test_missing_stylesheets_and_fonts_ignored(tmp_path, caplog):
    body = "<p>Styled text.</p>"
    head_links = (
        '<html xmlns="http://www.w3.org/1999/xhtml"><head><title>T</title>'
        '<link rel="stylesheet" type="text/css" href="css/missing.css"/>'
        '<style>@font-face { font-family: Gone; src: url(fonts/gone.otf); }</style></head>'
        f"<body>{body}</body></html>"
    )
    extra_manifest = [
        ("css", "css/missing.css", "text/css", ""),
        ("font", "fonts/gone.otf", "font/otf", ""),
        ("cover-image", "images/gone.png", "image/png", "cover-image"),
    ]
    encryption = (
        '<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" '
        'xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData>'
        '<enc:EncryptionMethod Algorithm="http://www.idpf.org/2008/embedding"/>'
        '<enc:CipherData><enc:CipherReference URI="OEBPS/fonts/gone.otf"/></enc:CipherData>'
        "</enc:EncryptedData></encryption>"
    )
    path = write_spine_book(
        tmp_path / "book.epub",
        {"one.xhtml": body},
        ["one"],
        [("One", "one.xhtml")],
        extra_manifest=extra_manifest,
        extra_files={"OEBPS/one.xhtml": head_links, "META-INF/encryption.xml": encryption},
    )

    with caplog.at_level(logging.WARNING, logger="pipeline.ingest"):
        book = read_book(path)

    assert paragraphs(book) == [("Styled text.",)]
    assert book.cover is None
    assert "missing.css" not in caplog.text
    assert "gone.otf" not in caplog.text


# linear="no"


def test_linear_no_policy_documented():
    assert 'linear="no"' in epub.__doc__
    assert "skipped even when the table of contents links to them" in epub.__doc__


def test_linear_no_skipped_without_toc(tmp_path):
    documents = {
        "one.xhtml": "<h1>One</h1><p>Story.</p>",
        "answers.xhtml": "<h1>Answers</h1><p>Answer key.</p>",
    }

    book = read_book(write_spine_book(tmp_path / "book.epub", documents, ["one", ("answers", False)], None))

    assert titles(book) == ["One"]
    assert paragraphs(book) == [("One", "Story.")]


def test_linear_no_in_middle_keeps_chapter_text(tmp_path):
    documents = {
        "one.xhtml": "<p>One starts.</p>",
        "popup.xhtml": "<p>Pop-up note.</p>",
        "one-b.xhtml": "<p>One continues.</p>",
        "two.xhtml": "<p>Two.</p>",
    }
    spine = ["one", ("popup", False), "one-b", "two"]
    toc = [("One", "one.xhtml"), ("Note", "popup.xhtml"), ("Two", "two.xhtml")]

    book = read_book(write_spine_book(tmp_path / "book.epub", documents, spine, toc))

    assert titles(book) == ["One", "Two"]
    assert paragraphs(book) == [("One starts.", "One continues."), ("Two.",)]


def test_linear_yes_explicit_is_read(tmp_path):
    documents = {"one.xhtml": "<p>One.</p>", "two.xhtml": "<p>Two.</p>"}

    book = read_book(write_spine_book(tmp_path / "book.epub", documents, [("one", True), "two"], None))

    assert paragraphs(book) == [("One.",), ("Two.",)]
