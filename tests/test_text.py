"""Sentence splitting: pysbd boundaries, the engine limit, and no text lost or doubled."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.records import Chapter
from pipeline.text import fit_to_limit, split_chapter, split_sentences


def squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def test_split_sentences_keeps_abbreviations() -> None:
    pieces = split_sentences("Mr. Utterson met Dr. Jekyll at noon. They spoke.", "en")

    assert pieces == ["Mr. Utterson met Dr. Jekyll at noon.", "They spoke."]


def test_split_sentences_french() -> None:
    pieces = split_sentences("Il faisait nuit. « Qui est là ? » demanda-t-il.", "fr")

    assert pieces[0] == "Il faisait nuit."
    assert squash("".join(pieces)) == squash("Il faisait nuit. « Qui est là ? » demanda-t-il.")


def test_split_sentences_japanese_full_stops() -> None:
    pieces = split_sentences("山路を登りながら、こう考えた。智に働けば角が立つ。", "ja")

    assert pieces == ["山路を登りながら、こう考えた。", "智に働けば角が立つ。"]


def test_fit_to_limit_prefers_clause_punctuation() -> None:
    sentence = "The lamp was lit, the boat came home, and the town slept soundly until morning."

    pieces = fit_to_limit(sentence, 45)

    assert pieces == ["The lamp was lit, the boat came home,", "and the town slept soundly until morning."]


def test_fit_to_limit_falls_back_to_spaces() -> None:
    sentence = "one two three four five six seven eight nine ten eleven twelve"

    pieces = fit_to_limit(sentence, 20)

    assert all(len(piece) <= 20 for piece in pieces)
    assert " ".join(pieces) == sentence


def test_fit_to_limit_cuts_unspaced_text() -> None:
    pieces = fit_to_limit("吾" * 250, 100)

    assert [len(piece) for piece in pieces] == [100, 100, 50]


def test_split_chapter_marks_paragraph_ends() -> None:
    chapter = Chapter(3, "Three", ("First one. Second one.", "Third one."))

    sentences = split_chapter(chapter, "en", 400)

    assert [sentence.index for sentence in sentences] == [1, 2, 3]
    assert [sentence.paragraph_end for sentence in sentences] == [False, True, True]
    assert {sentence.chapter_index for sentence in sentences} == {3}


words = st.text(alphabet="abcdefghij", min_size=1, max_size=12)
punctuation = st.sampled_from(["", "", ",", ";", ".", "!", "?", ":", " —"])
paragraphs = st.lists(
    st.tuples(words, punctuation).map("".join), min_size=1, max_size=60
).map(" ".join)


@settings(max_examples=150, deadline=None)
@given(st.lists(paragraphs, min_size=1, max_size=5), st.integers(min_value=10, max_value=200))
def test_split_chapter_loses_and_repeats_nothing(texts: list[str], max_chars: int) -> None:
    chapter = Chapter(1, "Property", tuple(texts))

    sentences = split_chapter(chapter, "en", max_chars)

    assert squash("".join(sentence.text for sentence in sentences)) == squash("".join(texts))
    assert all(len(sentence.text) <= max_chars for sentence in sentences)
    assert sum(sentence.paragraph_end for sentence in sentences) == len(texts)
