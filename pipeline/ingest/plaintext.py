"""Plain text and Markdown reading, including Project Gutenberg files.

Reading policy
--------------
* Encoding: UTF-8 with or without a BOM, UTF-16 or UTF-32 with a BOM, else cp1252,
  else Latin-1. Line endings are normalised to ``\\n``.
* A Project Gutenberg header (everything up to and including the ``*** START OF``
  line) and licence footer (from the ``*** END OF`` line, and the "End of the
  Project Gutenberg EBook" line before it) are removed. ``Title:``, ``Author:`` and
  ``Language:`` lines in the header give the metadata.
* Paragraphs are separated by blank lines, where a line of only spaces or tabs counts
  as blank. The lines of a paragraph are joined with single spaces.
* Plain text chapters start at heading lines such as ``Chapter 1``, ``CHAPTER IV``,
  ``Chapter I. Title`` or ``PROLOGUE`` (see ``_HEADING``). Text before the first
  heading is dropped, because plain text gives no way to distinguish it from the
  title page, production credits and contents list that precede the story.
* Markdown chapters start at ATX (``## Title``) or setext headings. A single ``#``
  heading followed by ``##`` headings is the book title, and ``##`` starts chapters.
  Otherwise the highest heading level starts chapters. Text before the first
  chapter heading is a chapter titled by the book title. Markdown without headings
  falls back to the plain text rules.
* A heading is read as the first paragraph of its chapter. A heading with no body
  text before the next heading (a contents line) makes no chapter. A book without
  headings is one chapter titled by the book title.
* Underscore italics (``_word_``) lose their underscores; Markdown also loses its
  other emphasis markers, link targets, images and HTML tags.
"""

from __future__ import annotations

import codecs
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import InvalidBookError
from pipeline.records import Book, Chapter

logger = logging.getLogger(__name__)

MAX_TEXT_BYTES = 64 * 1024 * 1024
"""Maximum size of a text file, in bytes (64 MiB). Long novels are a few MiB as plain text."""

MAX_CONTROL_CHARACTER_RATIO = 0.01
"""Share of control characters above which a decoded file is taken for binary data."""

_ROMAN = r"(?=[IVXLCDM])M{0,4}(?:CM|CD|D?C{0,3})(?:XC|XL|L?X{0,3})(?:IX|IV|V?I{0,3})"
_NUMBER = (
    r"(?:\d+|" + _ROMAN + "|" + _ROMAN.lower() + r"|(?i:the\s+)?(?i:one|two|three|four|five|six|seven|eight|nine|ten|"
    r"eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty|"
    r"first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|last)"
    r"(?:[-\s](?i:one|two|three|four|five|six|seven|eight|nine))?)"
)
_HEADING = re.compile(
    r"^(?:(?:Chapter|CHAPTER|Chapitre|CHAPITRE|Kapitel|KAPITEL|Capítulo|CAPÍTULO|Capitolo|CAPITOLO"
    r"|Book|BOOK|Part|PART|Livre|LIVRE)\s+" + _NUMBER + r"(?:\s*[.:—–-]\s*\S.{0,80}|[.:])?"
    r"|Prologue|PROLOGUE|Epilogue|EPILOGUE|Preface|PREFACE|Introduction|INTRODUCTION"
    r"|Foreword|FOREWORD|Afterword|AFTERWORD)\.?$"
)
_GUTENBERG_START = re.compile(r"^\s*\*{3}\s*START OF\b|^\s*\*END\*\s*THE SMALL PRINT", re.IGNORECASE)
_GUTENBERG_END = re.compile(r"^\s*\*{3}\s*END OF\b", re.IGNORECASE)
_GUTENBERG_END_LINE = re.compile(r"^\s*End of (?:the )?Project Gutenberg", re.IGNORECASE)
_GUTENBERG_FIELD = re.compile(r"^(Title|Author|Language):\s*(.+?)\s*$", re.MULTILINE)
_WHITESPACE = re.compile(r"[^\S\u00a0\u202f]+")
_UNDERSCORE_ITALICS = re.compile(r"(?<![\w_])_(?=\S)([^_]+?)(?<=\S)_(?![\w_])")
_LANGUAGE_TAG = re.compile(r"^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})*$")

LANGUAGE_NAMES = {
    "english": "en", "french": "fr", "german": "de", "spanish": "es", "italian": "it",
    "portuguese": "pt", "dutch": "nl", "latin": "la", "finnish": "fi", "swedish": "sv",
    "danish": "da", "norwegian": "no", "russian": "ru", "chinese": "zh", "japanese": "ja",
    "greek": "el", "polish": "pl", "hungarian": "hu", "esperanto": "eo", "catalan": "ca",
    "czech": "cs", "welsh": "cy", "irish": "ga", "tagalog": "tl",
}
"""Language names used in Project Gutenberg headers, mapped to BCP 47 tags."""


@dataclass(frozen=True)
class Paragraph:
    """One paragraph of text, marked with its heading level when it is a heading."""

    text: str
    heading: int = 0


@dataclass
class TextMetadata:
    """Title, authors and language found in the file itself."""

    title: str = ""
    authors: tuple[str, ...] = ()
    language: str = ""


def read_text(path: str | Path) -> Book:
    """Read a plain text book (``.txt``), stripping Project Gutenberg boilerplate.

    The reading policy is in this module's docstring.

    Raises
    ------
    InvalidBookError
        For a file that is too large, binary, or has no readable text.
    """
    text = _load(Path(path))
    body, metadata = strip_gutenberg(text)
    paragraphs = [_plain_paragraph(lines) for lines in split_paragraphs(body)]
    return _make_book(Path(path), paragraphs, metadata, keep_front=False)


def read_markdown(path: str | Path) -> Book:
    """Read a Markdown book (``.md``, ``.markdown``).

    The reading policy is in this module's docstring.

    Raises
    ------
    InvalidBookError
        For a file that is too large, binary, or has no readable text.
    """
    text, front_matter = _strip_front_matter(_load(Path(path)))
    body, metadata = strip_gutenberg(text)
    metadata.title = front_matter.title or metadata.title
    metadata.authors = front_matter.authors or metadata.authors
    metadata.language = front_matter.language or metadata.language
    paragraphs = markdown_paragraphs(body)
    if not any(paragraph.heading for paragraph in paragraphs):
        paragraphs = [_plain_paragraph(lines) for lines in split_paragraphs(body)]
        return _make_book(Path(path), paragraphs, metadata, keep_front=False)

    levels = sorted({paragraph.heading for paragraph in paragraphs if paragraph.heading})
    chapter_level = levels[0]
    top_headings = [paragraph for paragraph in paragraphs if paragraph.heading == levels[0]]
    if levels[0] == 1 and len(top_headings) == 1 and len(levels) > 1 and paragraphs[0] is top_headings[0]:
        metadata.title = metadata.title or top_headings[0].text
        chapter_level = levels[1]
        paragraphs = paragraphs[1:]

    paragraphs = [Paragraph(p.text, 1 if p.heading == chapter_level else 0) for p in paragraphs]
    return _make_book(Path(path), paragraphs, metadata, keep_front=True)


def decode_text(data: bytes, book: str) -> str:
    """Decode a text file: BOM-marked UTF-8/16/32, else UTF-8, else cp1252, else Latin-1.

    Raises
    ------
    InvalidBookError
        When the bytes are not text (NUL bytes without a UTF-16/32 BOM, or many
        control characters) or a BOM-marked file does not decode.
    """
    boms = (
        (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"),
    )
    encoding = next((name for bom, name in boms if data.startswith(bom)), None)
    if encoding is None and b"\x00" in data:
        raise InvalidBookError(
            book, "the file contains NUL bytes, so it is not a text file", "give a .txt or .md book"
        )

    try:
        text = data.decode(encoding) if encoding else _decode_unmarked(data)
    except UnicodeDecodeError as err:
        raise InvalidBookError(
            book, f"the file is not valid {encoding} text ({err.reason})", "save it as UTF-8"
        ) from err

    controls = sum(1 for char in text if ord(char) < 32 and char not in "\t\n\r\f")
    if text and controls / len(text) > MAX_CONTROL_CHARACTER_RATIO:
        raise InvalidBookError(book, "the file looks like binary data, not text", "give a .txt or .md book")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _decode_unmarked(data: bytes) -> str:
    for encoding in ("utf-8", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            logger.debug("text is not %s, trying the next encoding", encoding)
    return data.decode("latin-1")


def _load(path: Path) -> str:
    size = path.stat().st_size
    if size > MAX_TEXT_BYTES:
        raise InvalidBookError(
            str(path), f"the file is {size} bytes, more than the limit of {MAX_TEXT_BYTES}", "split the book"
        )
    return decode_text(path.read_bytes(), str(path))


def strip_gutenberg(text: str) -> tuple[str, TextMetadata]:
    """Remove a Project Gutenberg header and licence footer, and read the header fields.

    Returns the remaining text and the ``Title:``, ``Author:`` and ``Language:``
    values from the header (or from the whole text when it has no ``START`` line).
    Text without Gutenberg markers comes back unchanged.
    """
    lines = text.split("\n")
    start = next((i for i, line in enumerate(lines) if _GUTENBERG_START.match(line)), None)
    header = "\n".join(lines[:start]) if start is not None else "\n".join(lines[:60])
    body = lines[start + 1 :] if start is not None else lines

    end = next((i for i, line in enumerate(body) if _GUTENBERG_END.match(line)), None)
    if end is not None:
        body = body[:end]
    while body and (not body[-1].strip() or _GUTENBERG_END_LINE.match(body[-1])):
        body.pop()

    fields = {name.lower(): value for name, value in reversed(_GUTENBERG_FIELD.findall(header))}
    metadata = TextMetadata(
        title=fields.get("title", ""),
        authors=(fields["author"],) if "author" in fields else (),
        language=language_tag(fields.get("language", "")),
    )
    return "\n".join(body), metadata


def language_tag(name: str) -> str:
    """Return a BCP 47 tag for a language name or tag (``English`` -> ``en``), or ``""``."""
    first = re.split(r"[,;/]|\s+and\s+", name.strip(), maxsplit=1)[0].strip()
    if _LANGUAGE_TAG.match(first) and first.lower() not in LANGUAGE_NAMES:
        return first
    return LANGUAGE_NAMES.get(first.lower(), "")


def split_paragraphs(text: str) -> list[list[str]]:
    """Split text into paragraphs at blank lines (whitespace-only lines are blank)."""
    paragraphs: list[list[str]] = []
    current: list[str] = []
    for line in text.split("\n"):
        if line.strip():
            current.append(line)
        elif current:
            paragraphs.append(current)
            current = []
    if current:
        paragraphs.append(current)
    return paragraphs


def clean_inline(text: str) -> str:
    """Collapse whitespace (keeping no-break spaces) and remove underscore italics."""
    text = _WHITESPACE.sub(" ", text).strip()
    return _UNDERSCORE_ITALICS.sub(r"\1", text)


def _plain_paragraph(lines: list[str]) -> Paragraph:
    """Mark a paragraph as a heading when its first line is a chapter heading line.

    A heading paragraph may have a second short line, which is the chapter's title
    (``CHAPTER I.`` then ``Down the Rabbit-Hole``).
    """
    first = clean_inline(lines[0])
    rest = clean_inline(" ".join(lines[1:]))
    if not _HEADING.match(first):
        return Paragraph(clean_inline(" ".join(lines)))
    if len(lines) == 1:
        return Paragraph(first, 1)
    if len(lines) == 2 and len(rest) <= 60 and not rest.endswith((".", "!", "?", ",", ";")):
        return Paragraph(f"{first} {rest}", 1)

    logger.debug("heading %r runs into its text; reading the rest as a paragraph", first)
    return Paragraph(f"{first}\n{rest}", 1)


def _make_book(path: Path, paragraphs: list[Paragraph], metadata: TextMetadata, *, keep_front: bool) -> Book:
    title = metadata.title or path.stem
    chapters = assemble_chapters(paragraphs, title, keep_front=keep_front)
    if not chapters:
        raise InvalidBookError(
            str(path), "the book contains no readable text", "check that the file contains the book's text"
        )

    logger.info("read %s: %d chapters", path, len(chapters))
    return Book(
        path=str(path),
        title=title,
        authors=metadata.authors,
        language=metadata.language or "en",
        chapters=chapters,
    )


def assemble_chapters(paragraphs: list[Paragraph], book_title: str, *, keep_front: bool) -> tuple[Chapter, ...]:
    """Group paragraphs into chapters at level-1 headings.

    A heading paragraph whose text contains a line break came from a heading line
    that ran straight into its text. Its first line is the title and the rest is body.
    Chapters with no body text are dropped. Text before the first heading forms a
    chapter titled ``book_title`` when ``keep_front`` is true and is dropped otherwise.
    """
    groups: list[tuple[str, list[str], bool]] = [(book_title, [], False)]
    for paragraph in paragraphs:
        if paragraph.heading:
            heading, _, body = paragraph.text.partition("\n")
            groups.append((heading, [heading] + ([body] if body else []), True))
        else:
            groups[-1][1].append(paragraph.text)

    front_title, front, _ = groups[0]
    if front and not keep_front and len(groups) > 1:
        logger.info("dropping %d paragraphs before the first chapter heading", len(front))
        groups = groups[1:]

    chapters: list[Chapter] = []
    for title, texts, has_heading in groups:
        body = texts[1:] if has_heading else texts
        if not any(text.strip() for text in body):
            continue
        chapters.append(Chapter(index=len(chapters) + 1, title=title, paragraphs=tuple(texts), source=title))
    return tuple(chapters)


_ATX_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT_UNDERLINE = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(?:```|~~~)")
_THEMATIC_BREAK = re.compile(r"^ {0,3}(?:(?:\*[ \t]*){3,}|(?:-[ \t]*){3,}|(?:_[ \t]*){3,})$")
_LIST_MARKER = re.compile(r"^\s*(?:[-*+]|\d{1,9}[.)])[ \t]+")
_BLOCKQUOTE_MARKER = re.compile(r"^(?:\s*>[ \t]?)+")
_SKIPPED_LINE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*\S|^\s*\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)*\|?\s*$")
_FRONT_MATTER_FIELD = re.compile(r"^(title|author|language|lang):\s*[\"']?(.*?)[\"']?\s*$", re.MULTILINE)

_INLINE_RULES = (
    (re.compile(r"<!--.*?-->", re.DOTALL), ""),
    (re.compile(r"!\[[^\]]*\]\([^)]*\)|!\[[^\]]*\]\[[^\]]*\]"), ""),
    (re.compile(r"\[([^\]]*)\]\([^)]*\)|\[([^\]]+)\]\[[^\]]*\]"), r"\1\2"),
    (re.compile(r"<(?:https?|mailto):[^>\s]*>"), ""),
    (re.compile(r"</?[A-Za-z][^>]*>"), ""),
    (re.compile(r"`+([^`]*)`+"), r"\1"),
    (re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1"), r"\2"),
    (re.compile(r"(?<![\w*])\*(?=\S)([^*]+?)(?<=\S)\*(?![\w*])"), r"\1"),
    (re.compile(r"~~(?=\S)(.+?)(?<=\S)~~"), r"\1"),
    (re.compile(r"\s\|\s|^\||\|$"), " "),
    (re.compile(r"\\([\\`*_{}\[\]()#+\-.!|>])"), r"\1"),
)


def markdown_inline(text: str) -> str:
    """Return the readable text of one Markdown paragraph: no markers, links or images."""
    for pattern, replacement in _INLINE_RULES:
        text = pattern.sub(replacement, text)
    return clean_inline(text)


def markdown_paragraphs(text: str) -> list[Paragraph]:
    """Split Markdown into paragraphs, marking ATX and setext headings with their level.

    Each list item starts a paragraph. Code blocks are kept as text without their
    fences. Thematic breaks, link reference definitions and table separator rows are
    dropped.
    """
    paragraphs: list[Paragraph] = []
    current: list[str] = []
    in_fence = False

    def flush() -> None:
        readable = markdown_inline(" ".join(current)) if not in_fence else clean_inline(" ".join(current))
        if readable:
            paragraphs.append(Paragraph(readable))
        current.clear()

    for raw_line in text.split("\n"):
        if _FENCE.match(raw_line):
            flush()
            in_fence = not in_fence
            continue

        line = raw_line if in_fence else _BLOCKQUOTE_MARKER.sub("", raw_line)
        heading = None if in_fence else _markdown_heading(line, current)
        if heading is not None:
            current.clear()
            paragraphs.append(heading)
        elif not line.strip() or (not in_fence and _THEMATIC_BREAK.match(line)):
            flush()
        elif in_fence or not _SKIPPED_LINE.match(line):
            if not in_fence and _LIST_MARKER.match(line):
                flush()
                line = _LIST_MARKER.sub("", line)
            current.append(line)

    flush()
    return [paragraph for paragraph in paragraphs if paragraph.text]


def _markdown_heading(line: str, current: list[str]) -> Paragraph | None:
    """Return a heading paragraph for an ATX line or a setext underline, else None.

    For a setext underline the heading text is ``current``, the one line above it.
    """
    atx = _ATX_HEADING.match(line)
    if atx:
        return Paragraph(markdown_inline(atx.group(2) or ""), len(atx.group(1)))

    underline = _SETEXT_UNDERLINE.match(line)
    if underline and len(current) == 1:
        return Paragraph(markdown_inline(current[0]), 1 if underline.group(1).startswith("=") else 2)
    return None


def _strip_front_matter(text: str) -> tuple[str, TextMetadata]:
    """Remove a YAML front matter block and read its ``title``, ``author`` and ``lang`` keys."""
    lines = text.lstrip("\ufeff").split("\n")
    if not lines or lines[0].strip() != "---":
        return text, TextMetadata()

    end = next((i for i, line in enumerate(lines[1:], start=1) if line.strip() in ("---", "...")), None)
    if end is None:
        return text, TextMetadata()

    fields = dict(_FRONT_MATTER_FIELD.findall("\n".join(lines[1:end])))
    metadata = TextMetadata(
        title=fields.get("title", ""),
        authors=(fields["author"],) if fields.get("author") else (),
        language=language_tag(fields.get("language") or fields.get("lang") or ""),
    )
    return "\n".join(lines[end + 1 :]), metadata
