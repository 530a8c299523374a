"""Tests of plain text, Markdown and single-file HTML ingest, and of read_book's input checks."""

from __future__ import annotations

import logging

import pytest

from pipeline.errors import InvalidBookError
from pipeline.ingest import SUPPORTED_SUFFIXES, read_book
from pipeline.ingest.plaintext import language_tag
from tests.fixtures.books import make_text_book

logger = logging.getLogger(__name__)


def titles(book) -> list[str]:
    return [chapter.title for chapter in book.chapters]


# read_book input checks


def test_missing_path(tmp_path):
    with pytest.raises(InvalidBookError, match="file not found"):
        read_book(tmp_path / "nowhere.epub")


def test_folder_rejected(tmp_path):
    folder = tmp_path / "book.epub"
    folder.mkdir()

    with pytest.raises(InvalidBookError, match="is a folder"):
        read_book(folder)


def test_empty_file_rejected(tmp_path):
    empty = tmp_path / "book.txt"
    empty.write_bytes(b"")

    with pytest.raises(InvalidBookError, match="the file is empty"):
        read_book(empty)


def test_unsupported_suffix_lists_supported(tmp_path):
    path = tmp_path / "book.pdf"
    path.write_bytes(b"%PDF-1.4")

    with pytest.raises(InvalidBookError) as raised:
        read_book(path)

    assert "unsupported file type '.pdf'" in str(raised.value)
    for suffix in SUPPORTED_SUFFIXES:
        assert suffix in str(raised.value)


def test_suffix_case_insensitive(tmp_path):
    book = read_book(make_text_book(tmp_path / "BOOK.TXT"))

    assert titles(book) == ["Chapter 1"]


def test_binary_txt_rejected(tmp_path):
    path = tmp_path / "noise.txt"
    path.write_bytes(bytes(range(1, 256)) * 40)

    with pytest.raises(InvalidBookError, match="binary data"):
        read_book(path)


def test_whitespace_only_text_rejected(tmp_path):
    path = tmp_path / "blank.txt"
    path.write_text(" \n\t\n  \n")

    with pytest.raises(InvalidBookError, match="no readable text"):
        read_book(path)


# Plain text


def test_gutenberg_header_footer_stripped(tmp_path):
    path = make_text_book(
        tmp_path / "pg.txt",
        [("Chapter 1", ["First."]), ("Chapter 2", ["Second."])],
        title="A Tale",
        author="Some Writer",
        language="French",
        gutenberg=True,
    )

    book = read_book(path)

    assert book.title == "A Tale"
    assert book.authors == ("Some Writer",)
    assert book.language == "fr"
    assert titles(book) == ["Chapter 1", "Chapter 2"]
    text = " ".join(chapter.text for chapter in book.chapters)
    assert "Gutenberg" not in text
    assert "LICENSE" not in text


def test_title_line_without_gutenberg(tmp_path):
    book = read_book(make_text_book(tmp_path / "b.txt", [("Chapter 1", ["Text."])], title="Plain Title"))

    assert book.title == "Plain Title"
    assert book.chapters[0].paragraphs == ("Chapter 1", "Text.")


def test_bom_and_crlf(tmp_path):
    chapters = [("Chapter 1", ["One line\nwrapped here."])]
    path = make_text_book(tmp_path / "b.txt", chapters, encoding="utf-8-sig", newline="\r\n")

    book = read_book(path)

    assert book.chapters[0].paragraphs == ("Chapter 1", "One line wrapped here.")


@pytest.mark.parametrize("encoding", ["utf-16", "cp1252"])
def test_other_encodings(tmp_path, encoding):
    chapters = [("Chapter 1", ["Café déjà vu – “quoted”."])]
    path = make_text_book(tmp_path / "b.txt", chapters, encoding=encoding)

    book = read_book(path)

    assert book.chapters[0].paragraphs[1] == "Café déjà vu – “quoted”."


def test_contents_list_makes_no_empty_chapters(tmp_path):
    path = tmp_path / "b.txt"
    path.write_text(
        "My Book\n\nCONTENTS\n\n   Chapter 1\n\n   Chapter 2\n\n"
        "   Chapter 1\n\nIt begins.\n\n   Chapter 2\n\nIt ends.\n"
    )

    book = read_book(path)

    assert titles(book) == ["Chapter 1", "Chapter 2"]
    assert book.chapters[0].paragraphs == ("Chapter 1", "It begins.")


@pytest.mark.parametrize(
    ("heading", "title"),
    [
        ("Chapter 1", "Chapter 1"),
        ("CHAPTER IV", "CHAPTER IV"),
        ("Chapter I. The Beginning", "Chapter I. The Beginning"),
        ("CHAPTER I.\nDown the Rabbit-Hole", "CHAPTER I. Down the Rabbit-Hole"),
        ("Chapter the First", "Chapter the First"),
        ("PROLOGUE", "PROLOGUE"),
    ],
)
def test_heading_forms(tmp_path, heading, title):
    path = tmp_path / "b.txt"
    path.write_text(f"{heading}\n\nBody text.\n\nChapter 99\n\nMore.\n")

    book = read_book(path)

    assert titles(book) == [title, "Chapter 99"]


def test_prose_mentioning_chapter_is_not_heading(tmp_path):
    path = tmp_path / "b.txt"
    path.write_text("Chapter 1\n\nchapter 2 was long.\n\nChapter 3 was longer than the rest of the book.\n")

    book = read_book(path)

    assert titles(book) == ["Chapter 1"]


def test_tab_only_lines_separate_paragraphs(tmp_path):
    path = tmp_path / "story.txt"
    path.write_text(
        "\t\n\nFirst paragraph\nwraps.\n\t\nSecond\u00a0; paragraph.\n\t \n\tThird _italic words_ here.\n\t"
    )

    book = read_book(path)

    assert titles(book) == ["story"]
    assert book.chapters[0].paragraphs == (
        "First paragraph wraps.",
        "Second\u00a0; paragraph.",
        "Third italic words here.",
    )
    assert book.language == "en"


def test_text_before_first_heading_dropped(tmp_path):
    path = tmp_path / "b.txt"
    path.write_text("Produced by volunteers.\n\nChapter 1\n\nThe story.\n")

    book = read_book(path)

    assert book.chapters[0].paragraphs == ("Chapter 1", "The story.")


@pytest.mark.parametrize(
    ("name", "tag"), [("English", "en"), ("French and English", "fr"), ("pt-BR", "pt-BR"), ("Klingon", "")]
)
def test_language_tag(name, tag):
    assert language_tag(name) == tag


# Markdown


def test_markdown_title_and_chapters(tmp_path):
    path = make_text_book(
        tmp_path / "b.md",
        [
            ("First", ["Some **bold** and *italic* and _under_ text."]),
            ("Second", ["A [link](http://x.org) here ![pic](p.png)."]),
        ],
        title="The Book",
        markdown=True,
    )

    book = read_book(path)

    assert book.title == "The Book"
    assert titles(book) == ["First", "Second"]
    assert book.chapters[0].paragraphs == ("First", "Some bold and italic and under text.")
    assert book.chapters[1].paragraphs == ("Second", "A link here .")


def test_markdown_lists_quotes_and_front_matter(tmp_path):
    path = tmp_path / "b.md"
    path.write_text(
        "---\ntitle: Front Title\nauthor: Jo\nlang: de\n---\n\n"
        "# One\n\n- item one\n- item two\n  continued\n\n> quoted\n> text\n\n***\n\n```\ncode line\n```\n\n"
        "Setext Chapter\n==============\n\nBody.\n"
    )

    book = read_book(path)

    assert (book.title, book.authors, book.language) == ("Front Title", ("Jo",), "de")
    assert titles(book) == ["One", "Setext Chapter"]
    assert book.chapters[0].paragraphs == ("One", "item one", "item two continued", "quoted text", "code line")


def test_markdown_without_headings_uses_plain_rules(tmp_path):
    path = tmp_path / "notes.markdown"
    path.write_text("Chapter 1\n\nText one.\n\nChapter 2\n\nText two.\n")

    book = read_book(path)

    assert titles(book) == ["Chapter 1", "Chapter 2"]


# Single-file HTML


def test_html_book_split_at_headings(tmp_path):
    path = tmp_path / "book.html"
    path.write_text(
        '<!DOCTYPE html><html lang="fr"><head><title>Le Livre</title><meta name="author" content="Un Auteur">'
        "<style>p{}</style></head><body><h1>Le Livre</h1><p>Avant-propos.</p>"
        "<h2>Un</h2><p>Texte un.<br>Suite</p><h2>Deux</h2><p>Texte&nbsp;deux.</p></body></html>"
    )

    book = read_book(path)

    assert (book.title, book.authors, book.language) == ("Le Livre", ("Un Auteur",), "fr")
    assert titles(book) == ["Le Livre", "Un", "Deux"]
    assert book.chapters[0].paragraphs == ("Le Livre", "Avant-propos.")
    assert book.chapters[1].paragraphs == ("Un", "Texte un. Suite")
    assert book.chapters[2].paragraphs == ("Deux", "Texte\u00a0deux.")


def test_xhtml_book_without_headings(tmp_path):
    path = tmp_path / "story.xhtml"
    path.write_text('<html xmlns="http://www.w3.org/1999/xhtml"><body><p>Only text.</p></body></html>')

    book = read_book(path)

    assert titles(book) == ["story"]
    assert book.chapters[0].paragraphs == ("Only text.",)


def test_html_with_entity_declaration_rejected(tmp_path):
    path = tmp_path / "evil.htm"
    path.write_text('<?xml version="1.0"?><!DOCTYPE html [<!ENTITY a "b">]><html><body><p>&a;</p></body></html>')

    with pytest.raises(InvalidBookError, match="declares XML entities"):
        read_book(path)
