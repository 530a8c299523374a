"""Property: every character of a generated EPUB's readable text reaches exactly one sentence, in order."""

from __future__ import annotations

import html
import logging
import re

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pipeline.ingest import read_book
from pipeline.text import split_chapter
from tests.fixtures.books import XHTML, package_document, write_epub, xhtml_document

logger = logging.getLogger(__name__)

TOKENS = st.sampled_from(
    [
        "lamp", "Harbour", "déjà", "naïve", "Œuvre", "ﬁsh", "in\u00adde\u00adpen\u00addent", "zero\u200bwidth",
        "Mr.", "Mrs.", "Dr.", "St.", "No. 5", "vs.", "etc.", "e.g.", "M.", "Mme", "Mlle.", "MM.", "n°", "U.S.A.",
        "42", "1,234", "3,14", "3.5", "1999", "10:30", "$5", "5\u00a0€", "21e", "1st", "XIX", "Chapter IV",
        ".", ",", ";", ":", "!", "?", "?!", "...", "…", "—", "–", "(", ")", "[", "]", "«", "»", "“", "”", "'", '"',
        "&", "<b>", "#", "*",
        "吾輩は猫である", "名前はまだ無い", "。", "、", "，", "「", "」", "山", "中文", "句子",
    ]
)
"""Text pieces that stress sentence splitting: abbreviations, numbers, quotes, CJK, invisible characters."""

SEPARATORS = st.sampled_from([" ", " ", " ", "", "\u00a0", "\u202f", "\n"])

PARAGRAPH = st.lists(st.tuples(TOKENS, SEPARATORS).map("".join), min_size=1, max_size=40).map("".join)

SECTION = st.tuples(
    st.booleans(),
    st.one_of(st.none(), PARAGRAPH),
    st.lists(PARAGRAPH, max_size=4),
)
"""(linked from the toc by a fragment, heading text or None, paragraphs) of one ``<section>``."""

DOCUMENT = st.tuples(
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.lists(SECTION, min_size=1, max_size=3),
)
"""(linked from the toc, linear, image only, sections) of one spine document."""


def squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def document_body(number: int, image_only: bool, sections: list) -> tuple[str, list[str], list[str]]:
    """Return a document's body, the anchors the toc links to and the readable texts, in order."""
    if image_only:
        return '<div><img src="plate.png" alt="A plate"/></div>', [], []

    body, anchors, texts = "", [], []
    for position, (linked, heading, paragraphs) in enumerate(sections):
        anchor = f"d{number}s{position}"
        if linked:
            anchors.append(anchor)
        parts = [f"<h2>{html.escape(heading)}</h2>"] if heading is not None else []
        parts += [f"<p>{html.escape(paragraph)}</p>" for paragraph in paragraphs]
        texts += ([heading] if heading is not None else []) + paragraphs
        body += f'<section id="{anchor}">{"".join(parts)}</section>\n'
    return body, anchors, texts


def write_generated_book(path, documents: list) -> str:
    """Write the EPUB for ``documents`` and return the text its linear documents hold, in spine order."""
    files: dict[str, str] = {}
    manifest = []
    spine = []
    toc = []
    expected = []
    for number, (linked, linear, image_only, sections) in enumerate(documents):
        name = f"doc{number}.xhtml"
        body, anchors, texts = document_body(number, image_only, sections)
        files[f"OEBPS/{name}"] = xhtml_document(body)
        manifest.append((f"doc{number}", name, XHTML, ""))
        spine.append((f"doc{number}", linear))
        toc += [f'<li><a href="{name}">Document {number}</a></li>'] if linked else []
        toc += [f'<li><a href="{name}#{anchor}">Section {anchor}</a></li>' for anchor in anchors]
        expected += texts if linear else []

    files["OEBPS/nav.xhtml"] = xhtml_document(f'<nav epub:type="toc"><ol>{"".join(toc)}</ol></nav>')
    files["OEBPS/content.opf"] = package_document(manifest + [("nav", "nav.xhtml", XHTML, "nav")], spine)
    write_epub(path, files)
    return "".join(expected)


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    documents=st.lists(DOCUMENT, min_size=1, max_size=4),
    language=st.sampled_from(["en", "fr", "ja", "zh", "de"]),
    max_chars=st.integers(min_value=12, max_value=400),
)
def test_every_character_reaches_one_sentence(tmp_path_factory, documents, language, max_chars):
    path = tmp_path_factory.mktemp("property") / "book.epub"
    expected = write_generated_book(path, documents)
    assume(squash(expected))

    book = read_book(path)
    sentences = [split_chapter(chapter, language, max_chars) for chapter in book.chapters]

    printed_order = "".join(sentence.text for chapter in sentences for sentence in chapter)
    assert squash(printed_order) == squash(expected)
    assert all(sentence.text.strip() for chapter in sentences for sentence in chapter)
    assert all(len(sentence.text) <= max_chars for chapter in sentences for sentence in chapter)
    for chapter, chapter_sentences in zip(book.chapters, sentences):
        indices = [sentence.index for sentence in chapter_sentences]
        assert indices == list(range(1, len(chapter_sentences) + 1))
        assert {sentence.chapter_index for sentence in chapter_sentences} <= {chapter.index}
