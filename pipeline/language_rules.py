"""English and French rules that spell out abbreviations and numbers for speech.

:func:`pipeline.normalize.normalize_for_speech` applies them. The number words come
from num2words; this module finds the numbers and chooses the reading (year, time,
money, ordinal, decimal).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from num2words import CONVERTER_CLASSES, num2words

logger = logging.getLogger(__name__)

MAX_CARDINAL_DIGITS = 15
"""Maximum number of digits read as one number.

Longer digit strings, such as card numbers, are read digit by digit.
"""

MASK = "\ue000"
"""Private-use character that replaces an abbreviation's period while a sentence splitter runs."""

Expand = Callable[[re.Match[str]], str | None]
"""Function from an abbreviation match to its spoken form, or to None to leave the match as it is."""

NumberStep = Callable[[str, str], str]
"""Function that rewrites the numbers in a text, given the text and a num2words language code."""

_ROMAN = re.compile(r"M{0,4}(CM|CD|D?C{0,3})(XC|XL|L?X{0,3})(IX|IV|V?I{0,3})")
_ROMAN_VALUES = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}
_SENTENCE_END = re.compile(r"[\s\"'»”’)\]]*")
_PUNCTUATION = "\"'«»“”‘’(),;:"
_NOT_AFTER_NUMBER = r"(?!\w|[.,:]\d)"
"""Lookahead that stops a number match at a letter or inside ``1.2.3`` or ``10:30``."""


@dataclass(frozen=True)
class Abbreviation:
    """An abbreviation, the context where it applies, and what is spoken instead."""

    pattern: re.Pattern[str]
    """Pattern of the abbreviation as a whole word, with any context it needs."""

    expand: Expand
    """Function giving the spoken form for one match, or None when the context rules it out."""

    title: bool
    """True when the abbreviation never ends a sentence (a title before a name, ``No.`` before a number)."""


def abbreviation(
    forms: tuple[str, ...], spoken: str | Expand, *, title: bool, after: str = r"(?!\w)"
) -> Abbreviation:
    """Build an :class:`Abbreviation` matching any of ``forms`` as a whole word.

    ``after`` is a lookahead that the text after the abbreviation must match; the
    default requires a word boundary.
    """
    alternatives = "|".join(re.escape(form) for form in sorted(forms, key=len, reverse=True))
    pattern = re.compile(rf"(?<![\w.])(?:{alternatives}){after}")
    expand = spoken if callable(spoken) else (lambda _match, word=spoken: word)
    return Abbreviation(pattern, expand, title)


def _spoken_abbreviation(match: re.Match[str], entry: Abbreviation) -> str:
    spoken = entry.expand(match)
    if spoken is None:
        return match.group(0)

    # "etc." at the end of a sentence is also its full stop, which must stay.
    if match.group(0).endswith(".") and _SENTENCE_END.fullmatch(match.string, match.end()):
        return spoken + "."

    # "No.5" and "n°5" need a space, or the number would be glued to the word.
    if match.string[match.end():match.end() + 1].isalnum():
        return spoken + " "
    return spoken


def previous_word(match: re.Match[str]) -> str:
    """Return the word before the match without surrounding punctuation, or ``""`` at the start."""
    words = match.string[: match.start()].split()
    return words[-1].strip(_PUNCTUATION) if words else ""


def roman_value(numeral: str) -> int | None:
    """Return the value of a well-formed Roman numeral in one letter case, else None."""
    if not numeral or not (numeral.isupper() or numeral.islower()):
        return None
    upper = numeral.upper()
    if not _ROMAN.fullmatch(upper):
        return None

    values = [_ROMAN_VALUES[letter] for letter in upper]
    return sum(-value if value < following else value for value, following in zip(values, values[1:] + [0]))


def num2words_language(language: str) -> str:
    """Return the num2words code for a BCP 47 tag: ``fr_CH`` for ``fr-CH`` if it exists, else ``fr``."""
    parts = re.split(r"[-_]", language.strip())
    if len(parts) > 1:
        regional = f"{parts[0].lower()}_{parts[1].upper()}"
        if regional in CONVERTER_CLASSES:
            return regional
    return parts[0].lower()


def cardinal(value: int, code: str) -> str:
    """Return ``value`` in words, without the commas num2words puts into long English numbers."""
    return num2words(value, lang=code).replace(",", "")


def ordinal(value: int, code: str) -> str:
    """Return ``value`` as an ordinal in words (``twenty-first``, ``vingt et unième``)."""
    return num2words(value, lang=code, to="ordinal").replace(",", "")


def year(value: int, code: str) -> str:
    """Return ``value`` read as a year (``nineteen ninety-nine``, ``two thousand and five``)."""
    return num2words(value, lang=code, to="year").replace(",", "")


def digits_words(digits: str, code: str) -> str:
    """Return each digit of ``digits`` in words, separated by spaces."""
    return " ".join(cardinal(int(digit), code) for digit in digits)


def integer_words(digits: str, code: str) -> str:
    """Read a digit string as one number, or digit by digit if it has a leading zero or over 15 digits."""
    if (len(digits) > 1 and digits.startswith("0")) or len(digits) > MAX_CARDINAL_DIGITS:
        return digits_words(digits, code)
    return cardinal(int(digits), code)


def roman_heading(keywords: str) -> re.Pattern[str]:
    """Match a heading word at the sentence start followed by a Roman numeral (``Chapter IV``)."""
    return re.compile(rf"^(\W*(?i:{keywords})\s+)([IVXLCDM]+|[ivxlcdm]+)(?!\w)")


@dataclass(frozen=True)
class LanguageRules:
    """Everything that spells out one language: abbreviations, headings and number steps."""

    abbreviations: tuple[Abbreviation, ...]
    """Applied in order, so an entry that checks context must come before a general one."""

    heading: re.Pattern[str]
    """Heading words whose Roman numeral is read as a number (see :func:`roman_heading`)."""

    number_steps: tuple[NumberStep, ...]
    """Rewrites applied in order after the headings: money before times before plain numbers."""

    def rewrite(self, text: str, code: str) -> str:
        """Apply the abbreviations, the heading rule and the number steps to ``text``."""
        for entry in self.abbreviations:
            text = entry.pattern.sub(partial(_spoken_abbreviation, entry=entry), text)

        heading = self.heading.match(text)
        value = roman_value(heading.group(2)) if heading else None
        if heading and value:
            text = f"{heading.group(1)}{cardinal(value, code)}{text[heading.end():]}"

        for step in self.number_steps:
            text = step(text, code)
        return text

    def mask_title_periods(self, text: str) -> str:
        """Replace the periods of title abbreviations that more text follows with :data:`MASK`."""
        characters = list(text)
        for entry in (entry for entry in self.abbreviations if entry.title):
            for match in entry.pattern.finditer(text):
                if entry.expand(match) is None or not text[match.end():].strip():
                    continue
                for position in range(match.start(), match.end()):
                    if characters[position] == ".":
                        characters[position] = MASK
        return "".join(characters)


# English

_EN_SAINT_BEFORE_WORDS = frozenset("the a of in on at to from by".split())
"""Capitalized words that may start a sentence before ``St.`` meaning Saint (``The St. Lawrence``)."""


def _english_saint(match: re.Match[str]) -> str | None:
    """``St.`` before a name is Saint, unless a capitalized word before it makes it a street."""
    before = previous_word(match)
    if before[:1].isupper() and before.lower() not in _EN_SAINT_BEFORE_WORDS:
        return None
    return "Saint"


ENGLISH_ABBREVIATIONS = (
    abbreviation(("Mr.", "MR."), "Mister", title=True),
    abbreviation(("Mrs.", "MRS."), "Missus", title=True),
    abbreviation(("Ms.", "MS."), "Miz", title=True),
    abbreviation(("Dr.", "DR."), "Doctor", title=True),
    abbreviation(("Prof.",), "Professor", title=True),
    abbreviation(("Mt.",), "Mount", title=True),
    abbreviation(("St.", "ST."), _english_saint, title=True, after=r"(?=\s+[A-Z])"),
    abbreviation(("St.", "ST."), "Street", title=False),
    abbreviation(("No.", "NO."), "number", title=True, after=r"(?=\s?\d)"),
    abbreviation(("Nos.",), "numbers", title=True, after=r"(?=\s?\d)"),
    abbreviation(("vs.", "vs"), "versus", title=True),
    abbreviation(("e.g.",), "for example", title=True),
    abbreviation(("i.e.",), "that is", title=True),
    abbreviation(("etc.",), "et cetera", title=False),
    abbreviation(("Jr.",), "Junior", title=False),
)
"""English abbreviations. ``St.`` is Saint before a name and Street after one."""

_EN_NUMBER = r"(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?"
_EN_MONEY_UNITS = {
    "$": ("dollar", "dollars", "cent", "cents"),
    "£": ("pound", "pounds", "penny", "pence"),
    "€": ("euro", "euros", "cent", "cents"),
}
_EN_MONEY_BEFORE = re.compile(
    rf"(?<![\w$£€])([$£€])\s?{_EN_NUMBER}(?:\s(million|billion|trillion))?{_NOT_AFTER_NUMBER}"
)
_EN_MONEY_AFTER = re.compile(rf"(?<![\w.,]){_EN_NUMBER}\s?([$£€])")
_EN_TIME = re.compile(r"(?<![\w:.,])([01]?\d|2[0-3]):([0-5]\d)(?!\w|:\d|[.,]\d)")
_EN_ORDINAL = re.compile(r"(?<![\w.,])(\d+)(st|nd|rd|th)(?!\w)")
_EN_YEAR_TEXT = r"1\d\d\d|20\d\d"
_EN_YEAR_RANGE = re.compile(
    rf"(?<![\w$£€.,:])({_EN_YEAR_TEXT})\s?[-–]\s?({_EN_YEAR_TEXT}|\d\d){_NOT_AFTER_NUMBER}"
)
_EN_YEAR = re.compile(rf"(?<![\w$£€.,:])({_EN_YEAR_TEXT})('?s)?{_NOT_AFTER_NUMBER}")
_EN_YEAR_BEFORE_WORDS = frozenset(
    "in since by until till from of circa around before after during year summer winter spring autumn fall "
    "january february march april may june july august september october november december".split()
)
_EN_YEAR_AFTER = re.compile(r"[\s\"'»”’)\]]*(?:$|[.,;:!?)\]]|\s(?:BC|AD|BCE|CE)\b)")
_EN_NUMBER_PATTERN = re.compile(rf"(?<![\w.,]){_EN_NUMBER}(\s?%)?{_NOT_AFTER_NUMBER}")


def english_number(integer: str, fraction: str | None, code: str) -> str:
    """Read ``1,234`` or ``3.14`` (integer and fraction digits) in English."""
    words = integer_words(integer.replace(",", ""), code)
    if fraction:
        words += f" point {digits_words(fraction, code)}"
    return words


def _english_money(integer: str, fraction: str | None, symbol: str, scale: str | None, code: str) -> str:
    singular, plural, minor_singular, minor_plural = _EN_MONEY_UNITS[symbol]
    if scale or (fraction and len(fraction) > 2):
        return " ".join(filter(None, (english_number(integer, fraction, code), scale, plural)))

    major = int(integer.replace(",", ""))
    minor = int(fraction.ljust(2, "0")) if fraction else 0
    parts = []
    if major or not minor:
        parts.append(f"{integer_words(str(major), code)} {singular if major == 1 else plural}")
    if minor:
        parts.append(f"{cardinal(minor, code)} {minor_singular if minor == 1 else minor_plural}")
    return " and ".join(parts)


def english_money(text: str, code: str) -> str:
    """Read ``$5``, ``£3.50``, ``$2.5 million`` and ``5 €`` in English."""
    text = _EN_MONEY_BEFORE.sub(lambda m: _english_money(m[2], m[3], m[1], m[4], code), text)
    return _EN_MONEY_AFTER.sub(lambda m: _english_money(m[1], m[2], m[3], None, code), text)


def _english_clock(match: re.Match[str], code: str) -> str:
    hour, minutes = int(match[1]), int(match[2])
    if minutes == 0:
        return cardinal(hour, code) + (" hundred" if hour > 12 else " o'clock")
    if minutes < 10:
        return f"{cardinal(hour, code)} oh {cardinal(minutes, code)}"
    return f"{cardinal(hour, code)} {cardinal(minutes, code)}"


def english_time(text: str, code: str) -> str:
    """Read ``10:30`` as ``ten thirty``, ``10:05`` as ``ten oh five`` and ``10:00`` as ``ten o'clock``."""
    return _EN_TIME.sub(lambda match: _english_clock(match, code), text)


def english_ordinal(text: str, code: str) -> str:
    """Read ``1st``, ``22nd`` and ``100th`` as ordinal words."""
    return _EN_ORDINAL.sub(lambda match: ordinal(int(match[1]), code), text)


def _plural_year(words: str) -> str:
    return words[:-1] + "ies" if words.endswith("y") else words + "s"


def _english_year(match: re.Match[str], code: str) -> str:
    before = previous_word(match).lower()
    after = _EN_YEAR_AFTER.match(match.string, match.end())
    if not (match[2] or before in _EN_YEAR_BEFORE_WORDS or after):
        return match.group(0)

    words = year(int(match[1]), code)
    return _plural_year(words) if match[2] else words


def english_year(text: str, code: str) -> str:
    """Read years from 1000 to 2099 as years (``nineteen ninety-nine``), also ``1990s`` and ``1939–45``.

    A four-digit number counts as a year after words such as ``in``, ``since`` or a month,
    before a punctuation mark, at the end, before ``BC`` or ``AD``, or with an ``s``.
    Elsewhere (``1999 people``) it is left to :func:`english_numbers` as a cardinal.
    """
    def read_range(match: re.Match[str]) -> str:
        last = match[2]
        last_words = cardinal(int(last), code) if len(last) == 2 else year(int(last), code)
        return f"{year(int(match[1]), code)} to {last_words}"

    text = _EN_YEAR_RANGE.sub(read_range, text)
    return _EN_YEAR.sub(lambda match: _english_year(match, code), text)


def english_numbers(text: str, code: str) -> str:
    """Read the remaining numbers (``1,234``, ``3.14``, ``50%``) as English words."""
    def read(match: re.Match[str]) -> str:
        words = english_number(match[1], match[2], code)
        return f"{words} percent" if match[3] else words

    return _EN_NUMBER_PATTERN.sub(read, text)


ENGLISH = LanguageRules(
    abbreviations=ENGLISH_ABBREVIATIONS,
    heading=roman_heading("chapter|part|book|volume|act|scene|section|canto"),
    number_steps=(english_money, english_time, english_ordinal, english_year, english_numbers),
)
"""Rules for English text."""


# French

_FR_UPPER = "A-ZÀ-ÖØ-Þ"
_FR_NUMBER = r"(\d{1,3}(?:[ \u2009]\d{3})+|\d+)(?:,(\d+))?"
_FR_MONEY_UNITS = {
    "€": ("euro", "euros", "centime", "centimes", False),
    "$": ("dollar", "dollars", "cent", "cents", False),
    "£": ("livre", "livres", "penny", "pence", True),
}
_FR_MONEY_BEFORE = re.compile(rf"(?<![\w$£€])([$£€])\s?{_FR_NUMBER}{_NOT_AFTER_NUMBER}")
_FR_MONEY_AFTER = re.compile(rf"(?<![\w.,]){_FR_NUMBER}\s?([$£€])")
_FR_TIME = re.compile(r"(?<![\w:.,])([01]?\d|2[0-3])(?::([0-5]\d)|\s?h\s?([0-5]\d)?)(?!\w|[.,:]\d)")
_FR_ORDINAL = re.compile(r"(?<![\w.,])(\d+)(ᵉʳ|ᵉ|ère|ème|eme|er|re|nde|nd|de|e)(?!\w)")
_FR_ROMAN_ORDINAL = re.compile(r"(?<![\w.])([IVX]+)(ᵉʳ|ᵉ|ème|er|re|e)(?!\w)")
_FR_NUMBER_PATTERN = re.compile(rf"(?<![\w.,]){_FR_NUMBER}(\s?%)?{_NOT_AFTER_NUMBER}")
_FR_LARGE_UNITS = ("million", "millions", "milliard", "milliards")


FRENCH_ABBREVIATIONS = (
    abbreviation(("M.",), "Monsieur", title=True, after=rf"(?=\s*[{_FR_UPPER}])"),
    abbreviation(("MM.",), "Messieurs", title=True),
    abbreviation(("Mmes", "Mmes."), "Mesdames", title=True),
    abbreviation(("Mme", "Mme."), "Madame", title=True),
    abbreviation(("Mlles", "Mlles."), "Mesdemoiselles", title=True),
    abbreviation(("Mlle", "Mlle."), "Mademoiselle", title=True),
    abbreviation(("Dr", "Dr."), "Docteur", title=True),
    abbreviation(("Pr", "Pr."), "Professeur", title=True),
    abbreviation(("Ste", "Ste."), "Sainte", title=True, after=rf"(?=[\s-]+[{_FR_UPPER}])"),
    abbreviation(("St", "St."), "Saint", title=True, after=rf"(?=[\s-]+[{_FR_UPPER}])"),
    abbreviation(("n°", "nº", "N°", "Nº"), "numéro", title=True, after=r"(?=\s?\d)"),
    abbreviation(("p. ex.",), "par exemple", title=True),
    abbreviation(("etc.",), "et cetera", title=False),
)
"""French abbreviations. ``M.`` is Monsieur only before a capitalized name."""


def feminine(words: str) -> str:
    """Turn a French number ending in ``un`` into ``une`` (``vingt et un`` becomes ``vingt et une``)."""
    if words == "un" or words.endswith((" un", "-un")):
        return words[:-2] + "une"
    return words


def french_number(integer: str, fraction: str | None, code: str) -> str:
    """Read ``1 234`` or ``3,14`` in French. The decimals are read as one number after ``virgule``."""
    words = integer_words(re.sub(r"\s", "", integer), code)
    if fraction:
        rest = fraction.lstrip("0")
        zeros = " ".join(["zéro"] * (len(fraction) - len(rest)))
        words += " virgule " + " ".join(filter(None, (zeros, integer_words(rest, code) if rest else "")))
    return words


def _french_money(integer: str, fraction: str | None, symbol: str, code: str) -> str:
    singular, plural, minor_singular, minor_plural, is_feminine = _FR_MONEY_UNITS[symbol]
    if fraction and len(fraction) > 2:
        return f"{french_number(integer, fraction, code)} {plural}"

    major = int(re.sub(r"\s", "", integer))
    minor = int(fraction.ljust(2, "0")) if fraction else 0
    words = integer_words(str(major), code)
    words = feminine(words) if is_feminine else words
    unit = singular if major < 2 else plural
    parts = []
    if major or not minor:
        # "un million d'euros": a unit after million or milliard takes "de".
        joiner = " "
        if words.endswith(_FR_LARGE_UNITS):
            joiner = " d'" if unit[0] in "aeiou" else " de "
        parts.append(f"{words}{joiner}{unit}")
    if minor:
        parts.append(f"{cardinal(minor, code)} {minor_singular if minor < 2 else minor_plural}")
    return " et ".join(parts)


def french_money(text: str, code: str) -> str:
    """Read ``5 €``, ``3,50 €``, ``1 000 000 €`` and ``$5`` in French."""
    text = _FR_MONEY_BEFORE.sub(lambda m: _french_money(m[2], m[3], m[1], code), text)
    return _FR_MONEY_AFTER.sub(lambda m: _french_money(m[1], m[2], m[3], code), text)


def _french_clock(match: re.Match[str], code: str) -> str:
    hour = int(match[1])
    minutes = match[2] or match[3]
    words = f"{feminine(cardinal(hour, code))} {'heure' if hour < 2 else 'heures'}"
    if minutes and int(minutes):
        words += f" {feminine(cardinal(int(minutes), code))}"
    return words


def french_time(text: str, code: str) -> str:
    """Read ``10:30``, ``10 h 30``, ``10h30`` and ``21 h`` as ``dix heures trente`` and so on."""
    return _FR_TIME.sub(lambda match: _french_clock(match, code), text)


def _french_ordinal_words(value: int, suffix: str, code: str) -> str:
    if value == 1 and suffix in ("re", "ère"):
        return "première"
    if value == 1:
        return "premier"
    if value == 2 and suffix in ("nd", "nde", "de"):
        return "seconde" if suffix != "nd" else "second"
    return ordinal(value, code)


def french_ordinal(text: str, code: str) -> str:
    """Read ``1er``, ``1re``, ``2nde``, ``21e``, ``3ème`` and Roman ``XIXe`` or ``Ier`` as ordinals."""
    text = _FR_ORDINAL.sub(lambda m: _french_ordinal_words(int(m[1]), m[2], code), text)

    def read_roman(match: re.Match[str]) -> str:
        value = roman_value(match[1])
        return _french_ordinal_words(value, match[2], code) if value else match.group(0)

    return _FR_ROMAN_ORDINAL.sub(read_roman, text)


def french_numbers(text: str, code: str) -> str:
    """Read the remaining numbers (``1 234``, ``3,14``, ``50 %``) as French words."""
    def read(match: re.Match[str]) -> str:
        words = french_number(match[1], match[2], code)
        return f"{words} pour cent" if match[3] else words

    return _FR_NUMBER_PATTERN.sub(read, text)


FRENCH = LanguageRules(
    abbreviations=FRENCH_ABBREVIATIONS,
    heading=roman_heading("chapitre|partie|livre|tome|acte|scène|section|chant"),
    number_steps=(french_money, french_time, french_ordinal, french_numbers),
)
"""Rules for French text. Years need no rule, because French reads them as cardinals."""

LANGUAGE_RULES = {"en": ENGLISH, "fr": FRENCH}
"""Rules by primary language subtag; other languages keep their numbers and abbreviations."""
