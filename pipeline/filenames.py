"""File names made from chapter titles that are valid on Linux, macOS and Windows."""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Sequence

logger = logging.getLogger(__name__)

FORBIDDEN_CHARACTERS = frozenset('/\\:*?"<>|')
"""Characters Windows rejects in file names; ``/`` and ``\\`` also separate folders."""

WINDOWS_RESERVED = frozenset(
    ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"]
    + [f"COM{digit}" for digit in "123456789¹²³"]
    + [f"LPT{digit}" for digit in "123456789¹²³"]
)
"""Device names Windows reserves, with or without an extension, in any letter case."""

MAX_NAME_BYTES = 120
"""Default length limit of a name in UTF-8 bytes: well under the 255 bytes of ext4, APFS
and NTFS, leaving room for a number prefix, a suffix and the folder path."""

TRIMMED_AT_START = " .-_"
"""Leading characters removed: a leading dot hides a file, a leading dash reads as an option."""

TRIMMED_AT_END = " ."
"""Trailing characters removed, because Windows drops them silently."""


def _replace_unsafe(text: str) -> str:
    """Replace forbidden and control characters with ``_`` and runs of whitespace with one space."""
    characters = []
    for character in unicodedata.normalize("NFC", text):
        if character.isspace():
            characters.append(" ")
        elif character in FORBIDDEN_CHARACTERS or unicodedata.category(character) in ("Cc", "Cs"):
            characters.append("_")
        else:
            characters.append(character)
    return re.sub(r" {2,}", " ", "".join(characters))


def _truncate_utf8(text: str, max_bytes: int) -> str:
    """Cut ``text`` to at most ``max_bytes`` UTF-8 bytes without splitting a character."""
    encoded = text.encode("utf-8")[:max_bytes]
    return encoded.decode("utf-8", "ignore")


def safe_file_name(title: str, max_bytes: int = MAX_NAME_BYTES, fallback: str = "untitled") -> str:
    """Turn ``title`` into a file name that every common file system accepts.

    Forbidden characters (``/ \\ : * ? " < > |``) and control characters become ``_``,
    whitespace becomes single spaces, leading dots, dashes, underscores and spaces and
    trailing dots and spaces are removed, and the result is cut to ``max_bytes`` UTF-8
    bytes. A Windows device name (``CON``, ``com1.txt``) gets a leading ``_``, and an
    empty result becomes ``fallback``. The suffix, if any, is the caller's to add.
    """
    name = _replace_unsafe(title).lstrip(TRIMMED_AT_START)
    name = _truncate_utf8(name, max_bytes).rstrip(TRIMMED_AT_END)
    if not name:
        return fallback
    if name.split(".")[0].rstrip(" ").upper() in WINDOWS_RESERVED:
        name = _truncate_utf8("_" + name, max_bytes).rstrip(TRIMMED_AT_END)
    return name


def unique_file_names(names: Sequence[str]) -> list[str]:
    """Make ``names`` unique, ignoring letter case, by adding `` (2)``, `` (3)`` before the suffix.

    Letter case is ignored because the default file systems of macOS and Windows do.
    """
    taken: set[str] = set()
    unique = []
    for name in names:
        stem, dot, suffix = name.rpartition(".") if "." in name.lstrip(".") else (name, "", "")
        candidate, number = name, 1
        while candidate.casefold() in taken:
            number += 1
            candidate = f"{stem} ({number}){dot}{suffix}"
        taken.add(candidate.casefold())
        unique.append(candidate)
    return unique
