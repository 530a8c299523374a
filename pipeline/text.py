"""Split chapter text into sentences short enough for the speech engine."""

from __future__ import annotations

import functools
import logging
import re
import unicodedata

from pipeline.normalize import mask_for_segmentation
from pipeline.records import Chapter, Sentence

logger = logging.getLogger(__name__)

PYSBD_LANGUAGES = frozenset(
    "am ar bg da de el en es fa fr hi hy it ja kk mr my nl pl ru sk ur zh".split()
)
"""Languages pysbd 0.3.4 has rules for; other languages use the English rules."""

CLAUSE_BREAK = re.compile(
    r"(?<=[,;:\u2014\u2013\u2026\u3001\uff0c\uff1b\uff1a)\]\u300d\u300f\u3011\uff09])\s*"
)
"""A position right after clause punctuation (comma, semicolon, colon, dashes, ellipsis, CJK
commas) or a closing bracket, CJK corner brackets included."""

SPACE_BREAK = re.compile(r"[^\S\u00a0\u202f]+")
"""Whitespace other than no-break spaces, which hold together what is spoken together (``5\u00a0€``)."""

ANY_SPACE_BREAK = re.compile(r"\s+")
"""Any whitespace, the last choice before a cut inside a word."""


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
    seams, which is stripped. pysbd segments a copy in which no-break spaces are spaces and
    title abbreviations (``Dr.``, ``Mlle.``) have no period, so it cannot end a sentence
    there. Its pieces only choose where to cut, so text that pysbd drops or changes
    stays in the sentence it belongs to.
    """
    masked = mask_for_segmentation(paragraph, language)
    starts = _piece_starts(masked, _segmenter(language).segment(masked))
    pieces = (paragraph[start:end].strip() for start, end in zip(starts, starts[1:] + [len(paragraph)]))
    return [piece for piece in pieces if piece]


def _piece_starts(text: str, pieces: list[str]) -> list[int]:
    """Return where each piece starts in ``text``, skipping pieces that are not found in order."""
    starts = [0]
    position = 0
    for piece in pieces:
        core = piece.strip()
        start = text.find(core, position) if core else -1
        if start < 0:
            continue
        if start > starts[-1]:
            starts.append(start)
        position = start + len(core)
    return starts


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

    Pieces end at clause punctuation when there is one in reach, else at a space other
    than a no-break space, else at any space. Text
    with no spaces at all (Chinese, Japanese) is cut at ``max_chars``, moved back so that
    no letter loses its combining marks and no emoji sequence is split.
    """
    pieces: list[str] = []
    rest = sentence.strip()
    while len(rest) > max_chars:
        halves = (
            _cut_at(rest, CLAUSE_BREAK, max_chars)
            or _cut_at(rest, SPACE_BREAK, max_chars)
            or _cut_at(rest, ANY_SPACE_BREAK, max_chars)
        )
        if halves is None or not halves[0]:
            cut = _cluster_boundary(rest, max_chars)
            halves = [rest[:cut], rest[cut:].strip()]
        pieces.append(halves[0])
        rest = halves[1]
    if rest:
        pieces.append(rest)
    return pieces


def _cluster_boundary(text: str, limit: int) -> int:
    """Return the last cut at or before ``limit`` that keeps combining marks and joiners with their letter."""
    cut = limit
    while cut > 1 and (
        unicodedata.category(text[cut]).startswith("M")
        or text[cut] in "\u200d\ufe0e\ufe0f"
        or "\U0001f3fb" <= text[cut] <= "\U0001f3ff"
        or text[cut - 1] == "\u200d"
    ):
        cut -= 1
    return cut if cut > 1 else limit


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
