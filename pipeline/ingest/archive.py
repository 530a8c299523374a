"""The EPUB container layer: bounded zip reading, ``container.xml`` and ``encryption.xml``."""

from __future__ import annotations

import io
import logging
import posixpath
import re
import unicodedata
import zipfile
import zlib
from pathlib import Path
from types import TracebackType
from urllib.parse import unquote, urlsplit

from lxml import etree

from pipeline.errors import InvalidBookError
from pipeline.ingest.safexml import parse_xml
from pipeline.ingest.xhtml import local_name

logger = logging.getLogger(__name__)

MAX_ENTRIES = 10_000
"""Maximum number of members in an archive. EPUBs rarely have more than a few hundred."""

MAX_ENTRY_BYTES = 128 * 1024 * 1024
"""Maximum decompressed size of one member, in bytes (128 MiB)."""

MAX_TOTAL_BYTES = 512 * 1024 * 1024
"""Maximum decompressed bytes read from one archive over all members, in bytes (512 MiB)."""

CONTAINER_PATH = "META-INF/container.xml"
"""Fixed location of the container document that names the package document."""

ENCRYPTION_PATH = "META-INF/encryption.xml"
"""Fixed location of the list of encrypted or obfuscated members."""

FONT_OBFUSCATION_ALGORITHMS = frozenset({"http://www.idpf.org/2008/embedding", "http://ns.adobe.com/pdf/enc#RC"})
"""Algorithms that only scramble embedded fonts, so they do not hide any text."""

READ_CHUNK_BYTES = 64 * 1024
"""Size of the chunks in which members are decompressed, so a limit stops the read early."""

MAX_COMPRESSION_RATIO = 100
"""Maximum decompressed-to-compressed size ratio of a member larger than ``RATIO_CHECK_BYTES``.

Deflated XHTML, OPF and NCX files of eight real EPUBs (from Standard Ebooks, Project
Gutenberg and the IDPF samples) had ratios of at most 11, while a zip bomb of zeros
reaches about 1000, so the ratio stops a bomb long before the size limits do.
"""

RATIO_CHECK_BYTES = 1024 * 1024
"""Decompressed size from which ``MAX_COMPRESSION_RATIO`` applies (1 MiB), so tiny files never trip it."""

_DRIVE_LETTER = re.compile(r"^[A-Za-z]:")
_FONT_SUFFIXES = (".ttf", ".otf", ".woff", ".woff2", ".eot")
_TEXT_SUFFIXES = (".xhtml", ".html", ".htm", ".xml", ".opf", ".ncx", ".css", ".smil")

_ARCHIVE_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError, NotImplementedError)
"""Exceptions that zipfile raises for damaged, truncated, encrypted or unsupported members."""


def check_member_name(name: str) -> str | None:
    """Return why a zip member name is unsafe, or None when it is safe.

    A name is unsafe when it is absolute (``/etc``, ``C:x``), contains a backslash
    or NUL, or has a ``..`` component, checked both as stored and after
    percent-decoding (``%2e%2e%2f``).
    """
    for candidate in (name, unquote(name)):
        if "\\" in candidate:
            return "contains a backslash"
        if "\x00" in candidate:
            return "contains a NUL character"
        if candidate.startswith("/") or _DRIVE_LETTER.match(candidate):
            return "is an absolute path"
        if ".." in candidate.split("/"):
            return "contains a '..' component"
    return None


def _decode_legacy_name(info: zipfile.ZipInfo) -> str:
    """Return the member name, decoding names stored as UTF-8 without the UTF-8 flag."""
    if info.flag_bits & 0x800:
        return info.filename

    try:
        return info.filename.encode("cp437").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return info.filename


class SafeZip:
    """A read-only zip archive whose reads are bounded by the module's limits.

    Use :meth:`open` as a context manager. Every failure, from a damaged archive to
    a limit being exceeded, raises :class:`InvalidBookError` naming the book.
    """

    def __init__(self, path: str, archive: zipfile.ZipFile) -> None:
        self.path = path
        self._archive = archive
        self._bytes_read = 0
        self._members: dict[str, zipfile.ZipInfo] = {}
        self._index_members()

    @classmethod
    def open(cls, path: str | Path) -> SafeZip:
        """Open the archive at ``path`` and validate its member list.

        Raises
        ------
        InvalidBookError
            When the file is not a zip archive, is truncated, has more than
            ``MAX_ENTRIES`` members or a member with an unsafe name.
        """
        book = str(path)
        try:
            archive = zipfile.ZipFile(book)
        except zipfile.BadZipFile as err:
            raise InvalidBookError(book, _describe_bad_zip(book), "re-download or re-export the book") from err
        except _ARCHIVE_ERRORS as err:
            raise InvalidBookError(book, f"the zip archive cannot be read ({err})", "re-export the book") from err

        try:
            return cls(book, archive)
        except InvalidBookError:
            archive.close()
            raise

    def _index_members(self) -> None:
        infos = self._archive.infolist()
        if len(infos) > MAX_ENTRIES:
            raise InvalidBookError(
                self.path,
                f"the archive has {len(infos)} members, more than the limit of {MAX_ENTRIES}",
                "an EPUB should not need that many files; check that this is the right file",
            )

        for info in infos:
            name = _decode_legacy_name(info)
            problem = check_member_name(name)
            if problem:
                raise InvalidBookError(
                    self.path,
                    f"the archive member name {name!r} {problem}",
                    "the archive is unsafe to read; re-export the book with a trusted tool",
                )
            self._members[name] = info
            self._members.setdefault(unicodedata.normalize("NFC", name), info)

    def __enter__(self) -> SafeZip:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._archive.close()

    def _lookup(self, name: str) -> zipfile.ZipInfo | None:
        info = self._members.get(name)
        if info is None:
            info = self._members.get(unicodedata.normalize("NFC", name))
        return info

    def read(self, name: str) -> bytes:
        """Decompress and return one member, counting its bytes against the limits.

        Raises
        ------
        KeyError
            When the archive has no member called ``name``.
        InvalidBookError
            When the member is encrypted, damaged, or its decompressed size passes
            ``MAX_ENTRY_BYTES`` or the archive's ``MAX_TOTAL_BYTES``.
        """
        info = self._lookup(name)
        if info is None:
            raise KeyError(name)

        if info.flag_bits & 0x1:
            raise InvalidBookError(
                self.path,
                f"the archive member {name!r} is password-protected",
                "export the book without a password",
            )
        self._check_limits(name, info.file_size)
        self._check_ratio(name, info.file_size, info)

        try:
            return self._read_capped(name, info)
        except _ARCHIVE_ERRORS as err:
            raise InvalidBookError(
                self.path,
                f"the archive member {name!r} is damaged and cannot be decompressed ({err})",
                "re-download or re-export the book",
            ) from err

    def read_optional(self, name: str) -> bytes | None:
        """Return a member like :meth:`read`, or None when the archive has no such member."""
        try:
            return self.read(name)
        except KeyError:
            return None

    def _read_capped(self, name: str, info: zipfile.ZipInfo) -> bytes:
        # The size in the header is only a claim, so every chunk is counted as it arrives.
        # CPython's BytesIO.getvalue() hands over its buffer without a copy (measured on
        # 3.11), so a member is held in memory once rather than twice as with b"".join().
        buffer = io.BytesIO()
        with self._archive.open(info) as member:
            while chunk := member.read(READ_CHUNK_BYTES):
                self._bytes_read += buffer.write(chunk)
                self._check_limits(name, buffer.tell(), counted=True)
                self._check_ratio(name, buffer.tell(), info)

        logger.debug("read %s from %s: %d bytes", name, self.path, buffer.tell())
        return buffer.getvalue()

    def _check_ratio(self, name: str, size: int, info: zipfile.ZipInfo) -> None:
        if size > RATIO_CHECK_BYTES and size > MAX_COMPRESSION_RATIO * max(info.compress_size, 1):
            raise InvalidBookError(
                self.path,
                f"the archive member {name!r} decompresses to more than {MAX_COMPRESSION_RATIO} times "
                f"its compressed size of {info.compress_size} bytes",
                "the file may be a zip bomb; do not open it",
            )

    def _check_limits(self, name: str, size: int, *, counted: bool = False) -> None:
        if size > MAX_ENTRY_BYTES:
            raise InvalidBookError(
                self.path,
                f"the archive member {name!r} decompresses to more than {MAX_ENTRY_BYTES} bytes",
                "the file may be a zip bomb; do not open it",
            )

        total = self._bytes_read if counted else self._bytes_read + size
        if total > MAX_TOTAL_BYTES:
            raise InvalidBookError(
                self.path,
                f"the archive decompresses to more than {MAX_TOTAL_BYTES} bytes",
                "the file may be a zip bomb; do not open it",
            )


def resolve_href(base_path: str, href: str) -> tuple[str, str] | None:
    """Resolve a link found in ``base_path`` to an archive path and a fragment.

    Percent-encoding is decoded (``%20``, UTF-8 for non-ASCII). Returns None for
    external links and for links that leave the archive (``../`` past its root).
    """
    parts = urlsplit(href.strip())
    if parts.scheme or parts.netloc:
        return None

    fragment = unquote(parts.fragment)
    if not parts.path:
        return base_path, fragment

    joined = posixpath.normpath(posixpath.join(posixpath.dirname(base_path), unquote(parts.path)))
    if joined == ".." or joined.startswith("../") or joined.startswith("/"):
        return None
    return joined, fragment


def encrypted_members(archive: SafeZip, book: str) -> frozenset[str]:
    """Return the members that ``META-INF/encryption.xml`` encrypts, other than obfuscated fonts.

    Raises
    ------
    InvalidBookError
        When a text member (XHTML, HTML, XML, OPF, NCX, CSS or SMIL) is encrypted,
        which means DRM. Encrypted images or audio are returned for the caller to avoid.
    """
    data = archive.read_optional(ENCRYPTION_PATH)
    if data is None:
        return frozenset()

    encrypted: dict[str, str] = {}
    for entry in parse_xml(data, book, ENCRYPTION_PATH).iter():
        if local_name(entry) != "encrypteddata":
            continue
        algorithm = _first_attribute(entry, "encryptionmethod", "Algorithm")
        member = posixpath.normpath(unquote(_first_attribute(entry, "cipherreference", "URI")))
        if member.lower().endswith(_FONT_SUFFIXES) and algorithm in FONT_OBFUSCATION_ALGORITHMS:
            logger.debug("font %s in %s is obfuscated, which does not affect the text", member, book)
        else:
            encrypted[member] = algorithm

    # Every entry is checked before anything is logged, so a DRM book gives only its error.
    for member, algorithm in encrypted.items():
        if member.lower().endswith(_TEXT_SUFFIXES):
            raise InvalidBookError(
                book,
                f"the book is DRM-encrypted ({member} is encrypted with {algorithm or 'an unknown algorithm'})",
                "remove the DRM with the software you bought it with, or use a DRM-free copy",
            )
    for member in encrypted:
        logger.info("%s in %s is encrypted and will not be used", member, book)
    return frozenset(encrypted)


def find_package_path(archive: SafeZip, book: str) -> str:
    """Return the archive path of the package document (OPF) that ``container.xml`` names.

    Raises
    ------
    InvalidBookError
        When ``container.xml`` is missing, unsafe, malformed or names no rootfile.
    """
    data = archive.read_optional(CONTAINER_PATH)
    if data is None:
        raise InvalidBookError(
            book, f"{CONTAINER_PATH} is missing, so this is not a valid EPUB", "re-export the book as EPUB"
        )

    rootfiles = [el for el in parse_xml(data, book, CONTAINER_PATH).iter() if local_name(el) == "rootfile"]
    preferred = [el for el in rootfiles if el.get("media-type") == "application/oebps-package+xml"]
    for rootfile in preferred + rootfiles:
        full_path = (rootfile.get("full-path") or "").strip()
        if full_path:
            return full_path

    raise InvalidBookError(
        book, f"{CONTAINER_PATH} names no package document (rootfile)", "re-export the book as EPUB"
    )


def _first_attribute(element: etree._Element, descendant: str, attribute: str) -> str:
    """Return ``attribute`` of the first descendant with local name ``descendant``, or ``""``."""
    for candidate in element.iter():
        if local_name(candidate) == descendant:
            return candidate.get(attribute, "")
    return ""


def _describe_bad_zip(path: str) -> str:
    """Tell a truncated zip archive from a file that is not a zip archive at all."""
    try:
        with open(path, "rb") as handle:
            magic = handle.read(4)
    except OSError:
        magic = b""

    if magic == b"PK\x03\x04":
        return "the zip archive is truncated or damaged (its central directory is missing)"
    return "the file is not a zip archive, so it is not a valid EPUB"
