"""Split chapter text into sentences short enough for the speech engine."""

from __future__ import annotations

import functools
import logging
import re

from pipeline.records import Chapter, Sentence

logger = logging.getLogger(__name__)

PYSBD_LANGUAGES = frozenset(
    "am ar bg da de el en es fa fr hi hy it ja kk mr my nl pl ru sk ur zh".split()
)
"""Languages pysbd 0.3.4 has rules for; other languages use the English rules."""

CLAUSE_BREAK = re.compile(r"(?<=[,;:\u2014\u2013\u3001\uff0c\uff1b\uff1a)\]])\s*")
"""A position right after clause punctuation (comma, semicolon, colon, dashes, CJK commas)."""

SPACE_BREAK = re.compile(r"\s+")


@functools.lru_cache(maxsize=32)
def _segmenter(language: str):  # noqa: ANN202
    import pysbd

    code = language.split("-")[0].lower()
    if code not in PYSBD_LANGUAGES:
        logger.debug("pysbd has no rules for %r; using English rules", language)
        code = "en"
    return pysbd.Segmenter(language=code, clean=False, char_span=False)


def split_sentences(paragraph: str, language: str) -> list[str]:
    """Split one paragraph into sentences with pysbd.

    The returned pieces, concatenated, equal ``paragraph`` except for whitespace at the
    seams, which is stripped.
    """
    pieces = _segmenter(language).segment(paragraph)
    return [piece.strip() for piece in pieces if piece.strip()]


def _cut_at(text: str, pattern: re.Pattern[str], max_chars: int) -> list[str] | None:
    """Cut ``text`` at the last match of ``pattern`` that leaves a head within ``max_chars``."""
    best = None
    for match in pattern.finditer(text, 1, max_chars + 1):
        if 0 < match.start() <= max_chars:
            best = match
    if best is None:
        return None
    return [text[: best.start()].strip(), text[best.end():].strip()]


def fit_to_limit(sentence: str, max_chars: int) -> list[str]:
    """Split a sentence longer than ``max_chars`` into pieces that fit.

    Pieces end at clause punctuation when there is one in reach, else at a space. Text
    with no spaces at all (Chinese, Japanese) is cut at ``max_chars``, which never splits
    a word because such scripts do not mark words with spaces.
    """
    pieces: list[str] = []
    rest = sentence.strip()
    while len(rest) > max_chars:
        halves = _cut_at(rest, CLAUSE_BREAK, max_chars) or _cut_at(rest, SPACE_BREAK, max_chars)
        if halves is None or not halves[0]:
            halves = [rest[:max_chars], rest[max_chars:].strip()]
        pieces.append(halves[0])
        rest = halves[1]
    if rest:
        pieces.append(rest)
    return pieces


def split_chapter(chapter: Chapter, language: str, max_chars: int) -> tuple[Sentence, ...]:
    """Turn a chapter's paragraphs into numbered sentences within the engine's limit.

    Parameters
    ----------
    chapter
        The chapter to split.
    language
        BCP 47 tag choosing pysbd's rules; unknown languages use English rules.
    max_chars
        The engine's longest accepted text, in characters.

    Returns
    -------
    tuple of Sentence
        Numbered from 1 in reading order; the last sentence of each paragraph has
        ``paragraph_end`` set.
    """
    sentences: list[Sentence] = []
    for paragraph in chapter.paragraphs:
        pieces = [
            piece
            for sentence in split_sentences(paragraph, language)
            for piece in fit_to_limit(sentence, max_chars)
        ]
        for position, piece in enumerate(pieces):
            sentences.append(
                Sentence(
                    chapter_index=chapter.index,
                    index=len(sentences) + 1,
                    text=piece,
                    paragraph_end=position == len(pieces) - 1,
                )
            )

    logger.debug("chapter c%03d: %d sentences", chapter.index, len(sentences))
    return tuple(sentences)
