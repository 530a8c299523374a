"""Tests of EPUB ingest on generated books: structure, text extraction, DRM and hostile files."""

from __future__ import annotations

import logging
import struct
import time
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.errors import InvalidBookError
from pipeline.ingest import archive, read_book
from tests.fixtures.books import (
    XHTML,
    make_epub,
    nav_document,
    package_document,
    write_epub,
    xhtml_document,
)

logger = logging.getLogger(__name__)

NAV = ("nav", "nav.xhtml", XHTML, "nav")


def write_book(
    path: Path,
    documents: dict[str, str],
    nav_body: str,
    spine: list[str | tuple[str, bool]] | None = None,
) -> Path:
    """Write an EPUB 3 whose documents are ``{href: body}`` and whose nav toc is ``nav_body``."""
    manifest = [(f"d{n}", href, XHTML, "") for n, href in enumerate(documents)] + [NAV]
    files: dict[str, str | bytes] = {f"OEBPS/{href}": xhtml_document(body) for href, body in documents.items()}
    files["OEBPS/nav.xhtml"] = xhtml_document(f'<nav epub:type="toc"><ol>{nav_body}</ol></nav>')
    files["OEBPS/content.opf"] = package_document(manifest, spine or [f"d{n}" for n in range(len(documents))])
    return write_epub(path, files)


def all_paragraphs(book) -> list[str]:
    return [paragraph for chapter in book.chapters for paragraph in chapter.paragraphs]


# Structure and table of contents


def test_nav_gives_chapters_and_metadata(tmp_path):
    path = make_epub(
        tmp_path / "book.epub",
        [("One", ["Alpha.", "Beta."]), ("Two", ["Gamma."])],
        title="My Book",
        authors=["Ann Author", "Bob Writer"],
        language="de-AT",
    )

    book = read_book(path)

    assert book.title == "My Book"
    assert book.authors == ("Ann Author", "Bob Writer")
    assert book.language == "de-AT"
    assert [chapter.title for chapter in book.chapters] == ["One", "Two"]
    assert [chapter.index for chapter in book.chapters] == [1, 2]
    assert book.chapters[0].paragraphs == ("One", "Alpha.", "Beta.")
    assert book.chapters[1].paragraphs == ("Two", "Gamma.")
    assert book.path == str(path)


def test_ncx_only_epub2(tmp_path):
    path = make_epub(tmp_path / "book.epub", [("First", ["A."]), ("Second", ["B."])], toc="ncx")

    book = read_book(path)

    assert [chapter.title for chapter in book.chapters] == ["First", "Second"]
    assert book.chapters[1].paragraphs == ("Second", "B.")


def test_fragment_toc_splits_one_file(tmp_path):
    chapters = [("One", ["A1.", "A2."]), ("Two", ["B1."]), ("Three", ["C1."])]
    path = make_epub(tmp_path / "book.epub", chapters, toc="fragments")

    book = read_book(path)

    assert [chapter.title for chapter in book.chapters] == ["One", "Two", "Three"]
    assert book.chapters[0].paragraphs == ("One", "A1.", "A2.")
    assert book.chapters[2].paragraphs == ("Three", "C1.")
    assert book.chapters[1].source == "OEBPS/text/book.xhtml#c2"


def test_no_toc_uses_spine_and_first_heading(tmp_path):
    path = make_epub(tmp_path / "book.epub", [("Heading A", ["Text A."]), ("Heading B", ["Text B."])], toc="none")

    book = read_book(path)

    assert [chapter.title for chapter in book.chapters] == ["Heading A", "Heading B"]
    assert book.chapters[1].paragraphs == ("Heading B", "Text B.")


def test_nested_toc_part_text_is_own_chapter(tmp_path):
    documents = {
        "part1.xhtml": "<h1>Part One</h1><p>The part's own introduction.</p>",
        "ch1.xhtml": "<h2>Chapter 1</h2><p>First chapter text.</p>",
        "part2.xhtml": "<h1>Part Two</h1>",
        "ch2.xhtml": "<h2>Chapter 2</h2><p>Second chapter text.</p>",
    }
    nav = (
        '<li><a href="part1.xhtml">Part One</a><ol><li><a href="ch1.xhtml">Chapter 1</a></li></ol></li>'
        '<li><a href="part2.xhtml">Part Two</a><ol><li><a href="ch2.xhtml">Chapter 2</a></li></ol></li>'
    )
    book = read_book(write_book(tmp_path / "book.epub", documents, nav))

    assert [chapter.title for chapter in book.chapters] == ["Part One", "Chapter 1", "Chapter 2"]
    assert book.chapters[0].paragraphs == ("Part One", "The part's own introduction.")
    # A part that is only a heading is no chapter, but its heading is still read first.
    assert book.chapters[2].paragraphs == ("Part Two", "Chapter 2", "Second chapter text.")


def test_linkless_toc_entries_skipped(tmp_path):
    documents = {"a.xhtml": "<p>Story A.</p>", "b.xhtml": "<p>Story B.</p>"}
    nav = (
        '<li><span>Author Name</span><ol><li><a href="a.xhtml">Story A</a></li>'
        '<li><a href="b.xhtml">Story B</a></li></ol></li>'
    )
    book = read_book(write_book(tmp_path / "book.epub", documents, nav))

    assert [chapter.title for chapter in book.chapters] == ["Story A", "Story B"]
    assert "Author Name" not in " ".join(all_paragraphs(book))


def test_url_encoded_hrefs_resolve(tmp_path):
    documents = {
        "my chapter.xhtml": "<p>Spaced name.</p>",
        "kapitel-ü.xhtml": '<p>Umlaut.</p><p id="zwei">Zwei.</p>',
    }
    nav = (
        '<li><a href="my%20chapter.xhtml">Spaced</a></li>'
        '<li><a href="kapitel-%C3%BC.xhtml">Umlaut</a></li>'
        '<li><a href="kapitel-%C3%BC.xhtml#zwei">Zwei</a></li>'
    )
    book = read_book(write_book(tmp_path / "book.epub", documents, nav))

    assert [chapter.title for chapter in book.chapters] == ["Spaced", "Umlaut", "Zwei"]
    assert book.chapters[2].paragraphs == ("Zwei.",)


def test_anchor_text_split_in_document_order(tmp_path):
    body = '<p>Intro to A.</p><h2 id="a">A</h2><p>Text A.</p><div><span id="b"/>Text B.</div><p>More B.</p>'
    nav = '<li><a href="doc.xhtml#a">A</a></li><li><a href="doc.xhtml#b">B</a></li>'
    book = read_book(write_book(tmp_path / "book.epub", {"doc.xhtml": body}, nav))

    assert [chapter.title for chapter in book.chapters] == ["Test Book", "A", "B"]
    assert book.chapters[0].paragraphs == ("Intro to A.",)
    assert book.chapters[1].paragraphs == ("A", "Text A.")
    assert book.chapters[2].paragraphs == ("Text B.", "More B.")


def test_unlinked_spine_document_joins_previous_chapter(tmp_path):
    documents = {"a.xhtml": "<p>Start.</p>", "a2.xhtml": "<p>Continued.</p>", "b.xhtml": "<p>Next.</p>"}
    nav = '<li><a href="a.xhtml">A</a></li><li><a href="b.xhtml">B</a></li>'
    book = read_book(write_book(tmp_path / "book.epub", documents, nav))

    assert book.chapters[0].paragraphs == ("Start.", "Continued.")
    assert len(book.chapters) == 2


def test_front_matter_before_toc_is_own_chapter(tmp_path):
    documents = {"preface.xhtml": "<h1>Preface</h1><p>Read me first.</p>", "a.xhtml": "<p>Story.</p>"}
    book = read_book(write_book(tmp_path / "book.epub", documents, '<li><a href="a.xhtml">Story</a></li>'))

    assert [chapter.title for chapter in book.chapters] == ["Preface", "Story"]
    assert book.chapters[0].source == "OEBPS/preface.xhtml"


def test_nonlinear_spine_item_skipped(tmp_path):
    documents = {"a.xhtml": "<p>Linear.</p>", "notes.xhtml": "<p>Pop-up answer key.</p>"}
    nav = '<li><a href="a.xhtml">A</a></li><li><a href="notes.xhtml">Notes</a></li>'
    book = read_book(write_book(tmp_path / "book.epub", documents, nav, spine=["d0", ("d1", False)]))

    assert [chapter.title for chapter in book.chapters] == ["A"]
    assert "Pop-up answer key." not in all_paragraphs(book)


def test_missing_spine_item_warns(tmp_path, caplog):
    path = make_epub(tmp_path / "book.epub", [("One", ["A."]), ("Two", ["B."])])
    with zipfile.ZipFile(path) as source:
        remaining = [name for name in source.namelist() if name not in ("mimetype", "OEBPS/text/chapter-01.xhtml")]
        files = {name: source.read(name) for name in remaining}
    write_epub(path, files)

    with caplog.at_level(logging.WARNING, logger="pipeline.ingest"):
        book = read_book(path)

    assert [chapter.title for chapter in book.chapters] == ["Two"]
    assert "OEBPS/text/chapter-01.xhtml" in caplog.text


def test_empty_spine_document_skipped(tmp_path, caplog):
    path = make_epub(tmp_path / "book.epub", extra_files={"OEBPS/text/chapter-01.xhtml": ""})

    with caplog.at_level(logging.WARNING, logger="pipeline.ingest"):
        book = read_book(path)

    assert [chapter.title for chapter in book.chapters] == ["Chapter Two"]
    assert "empty file" in caplog.text


def test_cover_image_and_cover_page(tmp_path):
    book = read_book(make_epub(tmp_path / "book.epub", cover=True))

    assert book.cover is not None
    assert book.cover.startswith(b"\x89PNG")
    assert book.cover_media_type == "image/png"
    assert book.chapters[0].title == "Chapter One"


def test_epub2_cover_meta(tmp_path):
    book = read_book(make_epub(tmp_path / "book.epub", toc="ncx", cover=True))

    assert book.cover_media_type == "image/png"


# Text extraction


def test_nested_lists_read_once(tmp_path):
    body = "<ul><li>Outer one<ul><li>Inner a</li><li>Inner b</li></ul></li><li>Outer two</li></ul>"
    book = read_book(write_book(tmp_path / "book.epub", {"a.xhtml": body}, '<li><a href="a.xhtml">A</a></li>'))

    assert all_paragraphs(book) == ["Outer one", "Inner a", "Inner b", "Outer two"]


def test_text_around_images_kept(tmp_path):
    body = '<p>Before the picture <img src="x.png" alt="ALT"/> after the picture.</p>'
    book = read_book(write_book(tmp_path / "book.epub", {"a.xhtml": body}, '<li><a href="a.xhtml">A</a></li>'))

    assert all_paragraphs(book) == ["Before the picture after the picture."]


def test_unspoken_markup_skipped(tmp_path):
    body = (
        "<script>var secret = 1;</script><style>p { color: red; }</style>"
        "<p>山<ruby>路<rp>(</rp><rt>みち</rt><rp>)</rp></ruby>を登る</p>"
        '<p hidden="">Hidden text.</p>'
        '<p>Said he<a epub:type="noteref" href="#n1">1</a> loudly.'
        '<span epub:type="pagebreak" title="12">12</span></p>'
        '<aside epub:type="footnote" id="n1"><p>A footnote.</p></aside>'
        '<p>Role based<a role="doc-noteref" href="#n2">2</a> note.</p>'
        '<aside role="doc-footnote" id="n2"><p>Another footnote.</p></aside>'
    )
    book = read_book(write_book(tmp_path / "book.epub", {"a.xhtml": body}, '<li><a href="a.xhtml">A</a></li>'))

    assert all_paragraphs(book) == ["山路を登る", "Said he loudly.", "Role based note."]


def test_hard_wrapped_whitespace_collapses(tmp_path):
    body = "<p>Alice was\n\t\tbeginning   to get\n    very tired.</p><div>Verse line<br/>next line</div>"
    book = read_book(write_book(tmp_path / "book.epub", {"a.xhtml": body}, '<li><a href="a.xhtml">A</a></li>'))

    assert all_paragraphs(book) == ["Alice was beginning to get very tired.", "Verse line next line"]


def test_printed_page_and_line_numbers_skipped(tmp_path):
    body = (
        '<p>End of a page<span class="pagenum">[Pg 12]</span> and more.</p>'
        '<div>A verse line<span class="lnum">20</span></div>'
    )
    book = read_book(write_book(tmp_path / "book.epub", {"a.xhtml": body}, '<li><a href="a.xhtml">A</a></li>'))

    assert all_paragraphs(book) == ["End of a page and more.", "A verse line"]


def test_section_direct_text_and_table_cells(tmp_path):
    body = (
        "<section>Loose text<p>Inside p.</p>tail text</section>"
        "<table><tr><td>Cell 1</td><td>Cell 2</td></tr></table>"
    )
    book = read_book(write_book(tmp_path / "book.epub", {"a.xhtml": body}, '<li><a href="a.xhtml">A</a></li>'))

    assert all_paragraphs(book) == ["Loose text", "Inside p.", "tail text", "Cell 1", "Cell 2"]


def test_malformed_xhtml_falls_back_to_html(tmp_path):
    broken = "<html><body><p>Caf&eacute; &nbsp;open<p>Unclosed paragraph</body></html>"
    files = {
        "OEBPS/a.xhtml": broken,
        "OEBPS/nav.xhtml": nav_document([("A", "a.xhtml")]),
        "OEBPS/content.opf": package_document([("a", "a.xhtml", XHTML, ""), NAV], ["a"]),
    }

    book = read_book(write_epub(tmp_path / "book.epub", files))

    assert all_paragraphs(book) == ["Café \u00a0open", "Unclosed paragraph"]


def test_chapters_without_text_dropped(tmp_path):
    documents = {"a.xhtml": "<p>Text.</p>", "empty.xhtml": '<div><img src="x.png"/></div>'}
    nav = '<li><a href="a.xhtml">A</a></li><li><a href="empty.xhtml">Plate</a></li>'
    book = read_book(write_book(tmp_path / "book.epub", documents, nav))

    assert [chapter.title for chapter in book.chapters] == ["A"]


# Invalid and hostile files


def test_random_bytes_not_zip(tmp_path):
    path = tmp_path / "noise.epub"
    path.write_bytes(bytes(range(256)) * 10)

    with pytest.raises(InvalidBookError, match="is not a zip archive"):
        read_book(path)


def test_truncated_zip(tmp_path):
    path = make_epub(tmp_path / "book.epub")
    path.write_bytes(path.read_bytes()[:-200])

    with pytest.raises(InvalidBookError, match="truncated"):
        read_book(path)


def test_missing_container(tmp_path):
    path = tmp_path / "book.epub"
    with zipfile.ZipFile(path, "w") as book:
        book.writestr("mimetype", "application/epub+zip")
        book.writestr("OEBPS/content.opf", "<package/>")

    with pytest.raises(InvalidBookError, match="container.xml is missing"):
        read_book(path)


def test_missing_package_document(tmp_path):
    path = write_epub(tmp_path / "book.epub", {"OEBPS/a.xhtml": xhtml_document("<p>x</p>")})

    with pytest.raises(InvalidBookError, match="package document OEBPS/content.opf .* is missing"):
        read_book(path)


def test_no_readable_text(tmp_path):
    path = make_epub(tmp_path / "book.epub", [("", [])], toc="none")

    with pytest.raises(InvalidBookError, match="no readable text"):
        read_book(path)


def test_font_obfuscation_ignored(tmp_path):
    encryption = (
        '<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" '
        'xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData>'
        '<enc:EncryptionMethod Algorithm="http://www.idpf.org/2008/embedding"/>'
        '<enc:CipherData><enc:CipherReference URI="OEBPS/fonts/serif.otf"/></enc:CipherData>'
        "</enc:EncryptedData></encryption>"
    )
    extra = {"META-INF/encryption.xml": encryption, "OEBPS/fonts/serif.otf": b"\x00scrambled"}

    book = read_book(make_epub(tmp_path / "book.epub", extra_files=extra))

    assert book.chapters[0].title == "Chapter One"


def test_drm_encrypted_content_rejected(tmp_path):
    encryption = (
        '<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" '
        'xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData>'
        '<enc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/>'
        '<enc:CipherData><enc:CipherReference URI="OEBPS/text/chapter-01.xhtml"/></enc:CipherData>'
        "</enc:EncryptedData></encryption>"
    )
    path = make_epub(tmp_path / "book.epub", extra_files={"META-INF/encryption.xml": encryption})

    with pytest.raises(InvalidBookError, match="DRM-encrypted"):
        read_book(path)


@pytest.mark.parametrize(
    "name",
    [
        "../evil.xhtml",
        "OEBPS/../../evil.xhtml",
        "/etc/evil.xhtml",
        "OEBPS\\evil.xhtml",
        "%2e%2e/evil.xhtml",
        "OEBPS/%2E%2E%2F%2E%2E%2Fevil.xhtml",
        "C:/evil.xhtml",
    ],
)
def test_zip_slip_names_rejected(tmp_path, name):
    path = make_epub(tmp_path / "book.epub", extra_files={name: "<p>evil</p>"})

    with pytest.raises(InvalidBookError, match="member name"):
        read_book(path)


def test_external_entity_not_resolved(tmp_path):
    sentinel = tmp_path / "sentinel.txt"
    sentinel.write_text("SENTINEL-SECRET-CONTENT")
    xxe = (
        '<?xml version="1.0"?>\n'
        f'<!DOCTYPE html [<!ENTITY xxe SYSTEM "file://{sentinel}">]>\n'
        '<html xmlns="http://www.w3.org/1999/xhtml"><body><p>Leak: &xxe;</p></body></html>'
    )
    path = make_epub(tmp_path / "book.epub", extra_files={"OEBPS/text/chapter-01.xhtml": xxe})

    with pytest.raises(InvalidBookError, match="declares XML entities") as raised:
        read_book(path)

    assert "SENTINEL-SECRET-CONTENT" not in str(raised.value)


def test_external_entity_in_container_rejected(tmp_path):
    sentinel = tmp_path / "sentinel.txt"
    sentinel.write_text("OEBPS/content.opf")
    container = (
        f'<?xml version="1.0"?><!DOCTYPE c [<!ENTITY opf SYSTEM "file://{sentinel}">]>'
        '<container xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
        '<rootfiles><rootfile full-path="&opf;" media-type="application/oebps-package+xml"/>'
        "</rootfiles></container>"
    )
    path = make_epub(tmp_path / "book.epub", extra_files={"META-INF/container.xml": container})

    with pytest.raises(InvalidBookError, match="declares XML entities"):
        read_book(path)


def test_billion_laughs_rejected_quickly(tmp_path):
    entities = '<!ENTITY lol0 "lol">' + "".join(f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(1, 10))
    bomb = (
        f'<?xml version="1.0"?><!DOCTYPE html [{entities}]>'
        '<html xmlns="http://www.w3.org/1999/xhtml"><body><p>&lol9;</p></body></html>'
    )
    path = make_epub(tmp_path / "book.epub", extra_files={"OEBPS/text/chapter-01.xhtml": bomb})

    started = time.monotonic()
    with pytest.raises(InvalidBookError, match="declares XML entities"):
        read_book(path)

    assert time.monotonic() - started < 2.0


@pytest.fixture(scope="module")
def zip_bomb(tmp_path_factory) -> Path:
    """An EPUB whose one chapter decompresses to 600 MiB of zeros (about 3 MB on disk)."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.epub"
    files = {
        "OEBPS/nav.xhtml": nav_document([("Huge", "huge.xhtml")]),
        "OEBPS/content.opf": package_document([("huge", "huge.xhtml", XHTML, ""), NAV], ["huge"]),
    }
    write_epub(path, files)

    zeros = bytes(1024 * 1024)
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as book:
        with book.open("OEBPS/huge.xhtml", "w", force_zip64=True) as member:
            for _ in range(600):
                member.write(zeros)
    return path


def test_zip_bomb_rejected_quickly(zip_bomb):
    started = time.monotonic()
    with pytest.raises(InvalidBookError, match="zip bomb"):
        read_book(zip_bomb)

    assert time.monotonic() - started < 2.0


def test_understated_entry_size_rejected(tmp_path):
    """A header that claims fewer bytes than the member contains must not let the data through."""
    path = make_epub(tmp_path / "book.epub", [("One", ["x" * 2_000_000])])
    data = bytearray(path.read_bytes())
    name = b"OEBPS/text/chapter-01.xhtml"

    # Rewrite the uncompressed size in the central directory entry and the local header.
    central = data.find(b"PK\x01\x02")
    while central != -1 and data[central + 46 : central + 46 + len(name)] != name:
        central = data.find(b"PK\x01\x02", central + 4)
    local = struct.unpack_from("<I", data, central + 42)[0]
    struct.pack_into("<I", data, central + 24, 1000)
    struct.pack_into("<I", data, local + 22, 1000)
    path.write_bytes(bytes(data))

    with pytest.raises(InvalidBookError, match="damaged"):
        read_book(path)


def test_total_decompressed_limit(tmp_path, monkeypatch):
    path = make_epub(tmp_path / "book.epub", [("One", ["a" * 40_000]), ("Two", ["b" * 40_000])])
    monkeypatch.setattr(archive, "MAX_TOTAL_BYTES", 60_000)

    with pytest.raises(InvalidBookError, match="more than 60000 bytes"):
        read_book(path)


def test_too_many_entries(tmp_path, monkeypatch):
    path = make_epub(tmp_path / "book.epub")
    monkeypatch.setattr(archive, "MAX_ENTRIES", 3)

    with pytest.raises(InvalidBookError, match="more than the limit of 3"):
        read_book(path)


# Property: no text is lost or read twice

_WORDS = st.text(alphabet="abcdefgh ", min_size=1, max_size=12)
_SECTION = st.tuples(st.booleans(), st.booleans(), st.lists(_WORDS, max_size=3))
"""(linked from the toc, has a heading, paragraph words) for one section."""

_DOCUMENT = st.tuples(st.booleans(), st.lists(_SECTION, min_size=1, max_size=4))
"""(linked from the toc without a fragment, sections) for one spine document."""


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents=st.lists(_DOCUMENT, min_size=1, max_size=4))
def test_every_paragraph_reaches_one_chapter(tmp_path_factory, documents):
    bodies: dict[str, str] = {}
    nav_items: list[str] = []
    expected: list[str] = []
    counter = 0
    for doc_number, (doc_linked, sections) in enumerate(documents):
        if doc_linked:
            nav_items.append(f'<li><a href="doc{doc_number}.xhtml">D{doc_number}</a></li>')
        body = ""
        for section_number, (linked, has_heading, paragraphs) in enumerate(sections):
            anchor = f"s{section_number}"
            texts = ([f"Heading {counter}"] if has_heading else []) + [
                f"Paragraph {counter}-{n} {words}".strip() for n, words in enumerate(paragraphs)
            ]
            counter += 1
            expected += [" ".join(text.split()) for text in texts]
            tags = [f"<h2>{texts[0]}</h2>"] if has_heading else []
            tags += [f"<p>{text}</p>" for text in texts[len(tags) :]]
            body += f'<section id="{anchor}">{"".join(tags)}</section>'
            if linked:
                href = f"doc{doc_number}.xhtml#{anchor}"
                nav_items.append(f'<li><a href="{href}">S{doc_number}.{section_number}</a></li>')
        bodies[f"doc{doc_number}.xhtml"] = body

    if not expected:
        return
    path = write_book(tmp_path_factory.mktemp("prop") / "book.epub", bodies, "".join(nav_items))

    book = read_book(path)

    assert all_paragraphs(book) == expected
    assert all(chapter.paragraphs for chapter in book.chapters)
    assert [chapter.index for chapter in book.chapters] == list(range(1, len(book.chapters) + 1))
