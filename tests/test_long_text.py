"""Paragraphs of thousands of characters with no sentence end, split within each engine's limit."""

from __future__ import annotations

import itertools
import logging
import re
import time
import unicodedata

import pytest

from pipeline.records import Chapter
from pipeline.speech import engine_class
from pipeline.text import split_chapter

logger = logging.getLogger(__name__)

ENGINE_LIMITS = sorted({engine_class(name).max_chars for name in ("piper", "espeak")})
"""The engines' longest accepted text, in characters (400 and 1000 at the time of writing)."""

WORDS = "the lamplighter carried his ladder through quiet streets while evening fog rolled over harbour".split()
CHINESE = "我们在山上看见了一个很大的房子里面住着一位老人他每天早上都去河边打水"
JAPANESE = "山路を登りながらこう考えた智に働けば角が立つ情に棹させば流される意地を通せば窮屈だ"


def squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def split_one(text: str, language: str, max_chars: int) -> list[str]:
    return [sentence.text for sentence in split_chapter(Chapter(1, "Long", (text,)), language, max_chars)]


def english_run(characters: int) -> str:
    """Words without any punctuation, at least ``characters`` long."""
    words = itertools.cycle(WORDS)
    text = ""
    while len(text) < characters:
        text += next(words) + " "
    return text.strip()


@pytest.mark.parametrize("max_chars", ENGINE_LIMITS)
def test_english_run_split_at_spaces(max_chars):
    text = english_run(8000)

    pieces = split_one(text, "en", max_chars)

    longest_word = max(map(len, WORDS))
    assert len(pieces) > 1
    assert all(len(piece) <= max_chars for piece in pieces)
    assert " ".join(pieces).split() == text.split()
    assert all(len(piece) > max_chars - longest_word - 1 for piece in pieces[:-1])


@pytest.mark.parametrize("max_chars", ENGINE_LIMITS)
def test_english_run_prefers_clause_punctuation(max_chars):
    marks = itertools.islice(itertools.cycle(",;:—"), 60)
    clauses = [english_run(150) + mark for mark in marks]
    text = " ".join(clauses)

    pieces = split_one(text, "en", max_chars)

    assert all(len(piece) <= max_chars for piece in pieces)
    assert all(piece.endswith((",", ";", ":", "—")) for piece in pieces[:-1])
    assert squash("".join(pieces)) == squash(text)


@pytest.mark.parametrize("max_chars", ENGINE_LIMITS)
@pytest.mark.parametrize(("language", "sample"), [("zh", CHINESE), ("ja", JAPANESE)])
def test_unspaced_run_cut_at_limit(language, sample, max_chars):
    text = (sample * (5000 // len(sample) + 1))[:5000]

    pieces = split_one(text, language, max_chars)

    assert [len(piece) for piece in pieces[:-1]] == [max_chars] * (len(pieces) - 1)
    assert len(pieces[-1]) <= max_chars
    assert "".join(pieces) == text


@pytest.mark.parametrize("max_chars", ENGINE_LIMITS)
@pytest.mark.parametrize(("language", "comma"), [("zh", "，"), ("ja", "、")])
def test_unspaced_run_cut_after_cjk_commas(language, comma, max_chars):
    clause = (CHINESE if language == "zh" else JAPANESE)[:37] + comma
    text = clause * 140

    pieces = split_one(text, language, max_chars)

    assert all(len(piece) <= max_chars for piece in pieces)
    assert all(piece.endswith(comma) for piece in pieces)
    assert "".join(pieces) == text


def test_unspaced_run_cut_after_corner_brackets():
    quote = "「" + JAPANESE[:30] + "」"
    text = (quote + JAPANESE[:20]) * 120

    pieces = split_one(text, "ja", 400)

    assert all(len(piece) <= 400 for piece in pieces)
    assert all(piece.endswith("」") for piece in pieces[:-1])
    assert "".join(pieces) == text


def test_no_break_spaces_kept_together():
    phrase = "il a payé 5\u00a0€ à M.\u00a0Dupont"
    text = " ".join([phrase] * 200)

    pieces = split_one(text, "fr", 400)

    assert all(len(piece) <= 400 for piece in pieces)
    assert not any(piece.startswith(("€", "Dupont")) for piece in pieces)
    assert squash("".join(pieces)) == squash(text)


def test_hard_cut_keeps_combining_marks():
    text = "e\u0301" * 2000 + "👩\u200d👩\u200d👧" * 300

    pieces = split_one(text, "en", 401)

    assert all(len(piece) <= 401 for piece in pieces)
    assert not any(unicodedata.category(piece[0]).startswith("M") for piece in pieces)
    assert not any(piece.startswith("\u200d") or piece.endswith("\u200d") for piece in pieces)
    assert "".join(pieces) == text


def test_mixed_scripts_run_loses_nothing():
    text = " ".join(f"{CHINESE[:20]}word{number}{JAPANESE[:15]}" for number in range(300))

    pieces = split_one(text, "zh", 400)

    assert all(len(piece) <= 400 for piece in pieces)
    assert squash("".join(pieces)) == squash(text)


def test_very_long_run_splits_quickly():
    text = english_run(50_000)

    started = time.monotonic()
    pieces = split_one(text, "en", 400)
    seconds = time.monotonic() - started

    assert squash("".join(pieces)) == squash(text)
    assert seconds < 10.0
