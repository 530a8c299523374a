"""Tests of ingest on real books from the shared corpus, with measured chapter counts and titles."""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import pytest

from pipeline.ingest import epub, read_book
from pipeline.records import Book

logger = logging.getLogger(__name__)

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


@functools.cache
def load(name: str) -> Book:
    """Read a corpus book once per test session, or skip the test when the corpus is absent."""
    path = CORPUS / name
    if not path.exists():
        pytest.skip(f"corpus book {path} is not present")
    return read_book(path)


def full_text(book: Book) -> str:
    return "\n".join(chapter.text for chapter in book.chapters)


@pytest.mark.parametrize(
    ("name", "count", "first", "last"),
    [
        ("aesop-fables.epub", 285, "Introduction", "The Traveller and Fortune"),
        ("alice-1916-abridged.epub", 10, "Down The Rabbit-Hole", "Alice's Evidence"),
        ("art-of-war.epub", 22, "Dedication", "Endnotes"),
        (
            "childrens-literature.epub",
            21,
            "BIBLIOGRAPHY",
            "204 THE KING OF THE GOLDEN RIVER OR THE BLACK BROTHERS",
        ),
        ("jekyll-and-hyde.epub", 10, "Story of the Door", "Henry Jekyll’s Full Statement of the Case"),
        ("kusamakura-ja.epub", 14, "一", "この文書について"),
        ("moby-dick.epub", 138, "ETYMOLOGY.", "Epilogue"),
        ("wasteland.epub", 6, "I. THE BURIAL OF THE DEAD", 'NOTES ON "THE WASTE LAND"'),
        ("pride-and-prejudice.txt", 61, "Chapter 1", "Chapter 61"),
        ("la-morte-amoureuse-fr.txt", 1, "la-morte-amoureuse-fr", "la-morte-amoureuse-fr"),
    ],
)
def test_chapter_counts_and_titles(name, count, first, last):
    book = load(name)

    assert len(book.chapters) == count
    assert book.chapters[0].title == first
    assert book.chapters[-1].title == last
    assert all(chapter.paragraphs for chapter in book.chapters)
    assert [chapter.index for chapter in book.chapters] == list(range(1, count + 1))


def test_aesop_one_chapter_per_fable():
    book = load("aesop-fables.epub")
    fables = [chapter for chapter in book.chapters if "fables.xhtml#" in chapter.source]

    assert len(fables) == 284
    assert fables[0].title == "The Fox and the Grapes"
    assert fables[0].paragraphs[1].startswith("A hungry Fox saw some fine bunches of Grapes")
    # The imprint, colophon and licence pages are publisher boilerplate, not narrated.
    assert "Standard Ebooks" not in full_text(book)


def test_aesop_metadata():
    book = load("aesop-fables.epub")

    assert book.title == "Fables"
    assert book.authors == ("Aesop",)
    assert book.language == "en-GB"
    # Its only cover is SVG, which audiobook containers cannot embed.
    assert book.cover is None


def test_alice_cover_jpeg():
    book = load("alice-1916-abridged.epub")

    assert book.cover_media_type == "image/jpeg"
    assert book.cover is not None
    assert book.cover.startswith(b"\xff\xd8")


def test_pride_and_prejudice_text():
    book = load("pride-and-prejudice.txt")
    text = full_text(book)

    assert book.title == "Pride and Prejudice"
    assert book.authors == ("Jane Austen",)
    assert book.language == "en"
    assert book.chapters[0].paragraphs[1].startswith("It is a truth universally acknowledged, that a single man")
    assert "Gutenberg" not in text
    assert "GUTENBERG" not in text
    assert "CONTENTS" not in text
    assert all(len(chapter.paragraphs) > 1 for chapter in book.chapters)


def test_pride_and_prejudice_italics_and_wrapping():
    book = load("pride-and-prejudice.txt")
    paragraphs = [paragraph for chapter in book.chapters for paragraph in chapter.paragraphs]

    assert not any("\n" in paragraph or "  " in paragraph for paragraph in paragraphs)
    assert not any(" _" in paragraph or paragraph.startswith("_") for paragraph in paragraphs)


def test_moby_dick_contents_pages_not_read():
    book = load("moby-dick.epub")
    text = full_text(book)

    assert "Brief Contents" not in text
    assert "Begin Reading" not in text
    assert "Show detailed contents" not in text
    assert book.chapters[2].title == "Chapter 1. Loomings."
    assert book.chapters[2].paragraphs[1].startswith("Call me Ishmael.")


def test_childrens_literature_script_never_read():
    text = full_text(load("childrens-literature.epub"))

    assert "getElementsByTagName" not in text
    assert "removeHidden" not in text
    assert "THE CONTENTS" not in text


def test_childrens_literature_hidden_toc_entries_are_chapters():
    titles = [chapter.title for chapter in load("childrens-literature.epub").chapters]

    assert titles[2:7] == [
        "190 A FOUR-LEAVED CLOVER",
        "I. The Rabbi and the Diadem",
        "II. Friendship",
        "III. True Charity",
        "IV. An Eastern Garden",
    ]


def test_kusamakura_ruby_readings_dropped():
    book = load("kusamakura-ja.epub")

    assert book.chapters[0].paragraphs[1] == "山路を登りながら、こう考えた。"
    assert "やまみち" not in full_text(book)
    assert book.language == "ja-jp"


def test_wasteland_fragment_chapters():
    book = load("wasteland.epub")

    assert [chapter.source for chapter in book.chapters] == [
        f"EPUB/wasteland-content.xhtml#{anchor}" for anchor in ("ch1", "ch2", "ch3", "ch4", "ch5", "rearnotes")
    ]
    assert book.chapters[0].paragraphs[1] == "April is the cruellest month, breeding"
    assert "*" not in full_text(book)
    assert "Hofgarten," in book.chapters[0].paragraphs[10]
    assert not book.chapters[0].paragraphs[10].endswith("10")


def test_wasteland_ncx_gives_same_chapters(monkeypatch):
    if not (CORPUS / "wasteland.epub").exists():
        pytest.skip("corpus is not present")
    monkeypatch.setattr(epub, "_read_nav", lambda archive, book, nav: [])

    book = read_book(CORPUS / "wasteland.epub")

    expected = [chapter.title for chapter in load("wasteland.epub").chapters]
    assert [chapter.title for chapter in book.chapters] == expected


def test_alice_whitespace_collapsed():
    book = load("alice-1916-abridged.epub")
    paragraphs = [paragraph for chapter in book.chapters for paragraph in chapter.paragraphs]

    assert book.chapters[0].paragraphs[1].startswith(
        "Alice was beginning to get very tired of sitting by her sister on the bank, and of having nothing to do."
    )
    assert not any("\n" in paragraph or "\t" in paragraph or "  " in paragraph for paragraph in paragraphs)


def test_jekyll_skips_front_and_back_matter():
    book = load("jekyll-and-hyde.epub")

    first = book.chapters[0].paragraphs[1]
    assert first.startswith("Mr.\u00a0Utterson the lawyer was a man of a rugged countenance")
    assert "Uncopyright" not in full_text(book)


def test_art_of_war_noterefs_not_read():
    book = load("art-of-war.epub")
    chapter = next(chapter for chapter in book.chapters if chapter.title == "I: Laying Plans")

    assert chapter.paragraphs[1] == "Laying Plans"
    assert chapter.paragraphs[4].endswith("the conditions obtaining in the field.")


def test_la_morte_amoureuse_paragraphs():
    book = load("la-morte-amoureuse-fr.txt")

    assert len(book.chapters[0].paragraphs) == 77
    assert book.chapters[0].paragraphs[0].startswith("Vous me demandez, frère, si j'ai aimé\u00a0; oui.")
