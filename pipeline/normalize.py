"""Rewrite a sentence into the words a speech engine should speak: characters, numbers, abbreviations.

What changes
------------
* Every language: soft hyphens (U+00AD) and zero-width characters (U+200B to U+200D,
  U+2060, U+FEFF) are removed. The Latin ligatures ﬀ ﬁ ﬂ ﬃ ﬄ ﬅ ﬆ become their
  letters, while œ and æ stay because they are letters of their own. No-break spaces
  (U+00A0, U+202F) become spaces. A lexicon, when given, replaces its words.
* English and French: abbreviations become words (``Mr.`` Mister, ``Mme`` Madame),
  and currency, times, ordinals, percentages, years (English only) and other numbers
  are read as words with num2words in the book's language. A Roman numeral after a
  heading word at the start of the sentence (``Chapter IV``, ``CHAPITRE IX``) is read
  as a cardinal number.
* Other languages keep their numbers and abbreviations, which the engine reads itself.

The sentence shown in captions is never changed; only the text handed to the engine is.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from pipeline.language_rules import LANGUAGE_RULES, num2words_language

logger = logging.getLogger(__name__)

REMOVED_CHARACTERS = "\u00ad\u200b\u200c\u200d\u2060\ufeff"
"""Soft hyphen and zero-width characters: invisible in print, and noise to a speech engine."""

LIGATURES = {
    "\ufb00": "ff",
    "\ufb01": "fi",
    "\ufb02": "fl",
    "\ufb03": "ffi",
    "\ufb04": "ffl",
    "\ufb05": "st",
    "\ufb06": "st",
}
"""Latin presentation-form ligatures and the letters they stand for."""

NO_BREAK_SPACES = "\u00a0\u202f"
"""No-break space and narrow no-break space, which French typography puts before ``: ; ! ?``."""

_NO_BREAK_TABLE = str.maketrans(dict.fromkeys(NO_BREAK_SPACES, " "))
_CHARACTER_TABLE = str.maketrans(
    {**dict.fromkeys(REMOVED_CHARACTERS), **LIGATURES, **dict.fromkeys(NO_BREAK_SPACES, " ")}
)
_SPACE_RUN = re.compile(r" {2,}")
_TRAILING_COMMENT = re.compile(r"\s+#.*$")


class LexiconError(ValueError):
    """A lexicon file is missing, is not UTF-8, or has a line that is not ``word<TAB>replacement``."""

    def __init__(self, path: str, problem: str, fix: str) -> None:
        self.path = path
        self.problem = problem
        self.fix = fix
        super().__init__(f"{path}: {problem}; {fix}")


@dataclass(frozen=True)
class Lexicon:
    """Words of a book mapped to how they are spoken, matched as whole words in any letter case."""

    entries: dict[str, str]
    """Replacement per word, keyed by the word's ``str.casefold()`` form."""

    source: str = ""
    """The file the entries came from, for messages."""

    @cached_property
    def _pattern(self) -> re.Pattern[str] | None:
        if not self.entries:
            return None
        # Longest first, so that "New York City" wins over "New York".
        words = sorted(self.entries, key=len, reverse=True)
        alternatives = "|".join(re.escape(word) for word in words)
        return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)

    def apply(self, text: str) -> str:
        """Replace every lexicon word in ``text`` by its spoken form, written as in the lexicon."""
        pattern = self._pattern
        if pattern is None:
            return text
        return pattern.sub(self._replacement, text)

    def _replacement(self, match: re.Match[str]) -> str:
        word = match.group(0)
        return self.entries.get(word.casefold(), self.entries.get(word.lower(), word))


def load_lexicon(path: str | Path) -> Lexicon:
    """Read a pronunciation lexicon: one ``word<TAB>replacement`` or ``word = replacement`` per line.

    Blank lines and lines starting with ``#`` are skipped, and `` # comment`` after an
    entry is ignored. Words match whole words only and in any letter case. The
    replacement is spoken as written. When a word appears twice, the later line wins.

    Parameters
    ----------
    path
        A UTF-8 text file (a BOM is allowed).

    Returns
    -------
    Lexicon
        The entries, ready for :func:`normalize_for_speech`.

    Raises
    ------
    LexiconError
        When the file is missing or not UTF-8, or a line has no separator, an empty
        word or an empty replacement. The message names the file and the line number.
    """
    source = str(path)
    try:
        text = Path(path).read_bytes().decode("utf-8-sig")
    except FileNotFoundError as err:
        raise LexiconError(source, "lexicon file not found", "check the path given to --lexicon") from err
    except IsADirectoryError as err:
        raise LexiconError(
            source, "is a folder, not a lexicon file", "give the path of the lexicon file"
        ) from err
    except UnicodeDecodeError as err:
        raise LexiconError(
            source, f"the lexicon is not UTF-8 text (invalid byte at offset {err.start})", "save it as UTF-8"
        ) from err

    entries: dict[str, str] = {}
    first_line: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        entry = _parse_lexicon_line(line, source, number)
        if entry is None:
            continue

        key = entry[0].casefold()
        if key in entries:
            logger.warning(
                "lexicon %s: line %d replaces the entry for %r from line %d",
                source, number, entry[0], first_line[key],
            )
        entries[key] = entry[1]
        first_line[key] = number

    logger.debug("lexicon %s: %d entries", source, len(entries))
    return Lexicon(entries=entries, source=source)


def _parse_lexicon_line(line: str, source: str, number: int) -> tuple[str, str] | None:
    """Return ``(word, replacement)`` for an entry line, None for a blank or comment line."""
    stripped = line.strip()
    if not stripped or stripped.startswith("#"):
        return None

    # A trailing tab still separates a word from its empty replacement, so only the comment goes.
    content = _TRAILING_COMMENT.sub("", line)
    if "\t" in content:
        separator = "\t"
    elif "=" in content:
        separator = "="
    else:
        raise LexiconError(
            source,
            f"line {number}: no tab or '=' between the word and its replacement in {stripped!r}",
            "write one entry per line as 'word = replacement'",
        )

    word, _, replacement = (part.strip() for part in content.partition(separator))
    if not word:
        raise LexiconError(
            source,
            f"line {number}: the word before {separator!r} is empty",
            "add the word or remove the line",
        )
    if not replacement:
        raise LexiconError(
            source,
            f"line {number}: the replacement for {word!r} is empty",
            "add the spoken form or remove the line",
        )
    return word, replacement


def normalize_for_speech(text: str, language: str, lexicon: Lexicon | None = None) -> str:
    """Rewrite one sentence into the words the speech engine should speak.

    The steps, in order: invisible characters and ligatures, the lexicon, then for
    English and French the abbreviations, Roman numerals in headings, currency, times,
    ordinals, years and numbers. The module docstring lists what each step changes.

    Parameters
    ----------
    text
        The sentence as the book prints it.
    language
        BCP 47 tag of the text (``en``, ``en-GB``, ``fr-CA``). Regional number words
        are used where num2words has them (``fr-CH`` reads 80 as ``huitante``).
    lexicon
        Book-specific spoken forms, applied before any other rule, so an entry
        overrides an abbreviation or a number reading.

    Returns
    -------
    str
        The text to speak, with runs of spaces collapsed to one. It equals ``text``
        when no rule applies and ``text`` has no double spaces.
    """
    spoken = text.translate(_CHARACTER_TABLE)
    if lexicon is not None:
        spoken = lexicon.apply(spoken)

    rules = LANGUAGE_RULES.get(_primary_language(language))
    if rules is not None:
        spoken = rules.rewrite(spoken, num2words_language(language))

    return _SPACE_RUN.sub(" ", spoken).strip()


def mask_for_segmentation(text: str, language: str) -> str:
    """Return ``text`` with the same length, prepared for a sentence splitter.

    No-break spaces become spaces, and the periods of title abbreviations that never
    end a sentence (``Dr.`` before a name, French ``MM.`` and ``Mlle.``) become
    U+E000, so a splitter cannot end a sentence there. Because every character keeps
    its position, offsets into the result are offsets into ``text``.
    """
    masked = text.translate(_NO_BREAK_TABLE)
    rules = LANGUAGE_RULES.get(_primary_language(language))
    if rules is None:
        return masked
    return rules.mask_title_periods(masked)


def _primary_language(language: str) -> str:
    return re.split(r"[-_]", language.strip(), maxsplit=1)[0].lower()
