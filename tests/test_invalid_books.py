"""The real ``audiobook build`` CLI on invalid books: exit code 2, one ``Error:`` line, nothing written."""

from __future__ import annotations

import logging
import os
import subprocess
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import pytest

from pipeline.ingest import SUPPORTED_SUFFIXES
from tests.checks import run_cli
from tests.fixtures.books import TINY_PNG, make_epub, write_epub, xhtml_document

logger = logging.getLogger(__name__)

ENCRYPTION = (
    '<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" '
    'xmlns:enc="http://www.w3.org/2001/04/xmlenc#">{entries}</encryption>'
)
ENCRYPTED_DATA = (
    '<enc:EncryptedData><enc:EncryptionMethod Algorithm="{algorithm}"/>'
    '<enc:CipherData><enc:CipherReference URI="{uri}"/></enc:CipherData></enc:EncryptedData>'
)
AES = "http://www.w3.org/2001/04/xmlenc#aes128-cbc"
IDPF_OBFUSCATION = "http://www.idpf.org/2008/embedding"
ADOBE_OBFUSCATION = "http://ns.adobe.com/pdf/enc#RC"


def encryption_xml(*members: tuple[str, str]) -> str:
    """Return ``META-INF/encryption.xml`` listing ``(uri, algorithm)`` pairs."""
    entries = "".join(ENCRYPTED_DATA.format(algorithm=algorithm, uri=uri) for uri, algorithm in members)
    return ENCRYPTION.format(entries=entries)


def cli_environment(tmp_path: Path) -> dict[str, str]:
    """The caller's environment with the user cache folder (sentence cache, work folders) in tmp_path."""
    return {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}


# Each maker writes one invalid book into a folder and returns its path.


def missing_path(folder: Path) -> Path:
    return folder / "nowhere.epub"


def folder_named_epub(folder: Path) -> Path:
    path = folder / "folder.epub"
    path.mkdir()
    return path


def empty_file(folder: Path) -> Path:
    path = folder / "empty.epub"
    path.write_bytes(b"")
    return path


def random_bytes(folder: Path) -> Path:
    path = folder / "noise.epub"
    path.write_bytes(os.urandom(4096).replace(b"PK", b"pk"))
    return path


def truncated_zip(folder: Path) -> Path:
    path = make_epub(folder / "truncated.epub")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


def zip_without_container(folder: Path) -> Path:
    path = folder / "no-container.epub"
    with zipfile.ZipFile(path, "w") as book:
        book.writestr("mimetype", "application/epub+zip")
        book.writestr("OEBPS/content.opf", "<package/>")
        book.writestr("OEBPS/text.xhtml", xhtml_document("<p>Text.</p>"))
    return path


def missing_package_document(folder: Path) -> Path:
    return write_epub(folder / "no-opf.epub", {"OEBPS/text.xhtml": xhtml_document("<p>Text.</p>")})


def drm_encrypted(folder: Path) -> Path:
    # Like Adobe DRM: the cover image is listed first, then every chapter.
    encryption = encryption_xml(
        ("OEBPS/images/cover.png", AES),
        ("OEBPS/text/chapter-01.xhtml", AES),
        ("OEBPS/text/chapter-02.xhtml", AES),
    )
    return make_epub(folder / "drm.epub", cover=True, extra_files={"META-INF/encryption.xml": encryption})


def no_readable_text(folder: Path) -> Path:
    image_page = xhtml_document('<div><img src="../images/plate.png" alt="A plate"/></div>')
    extra = {"OEBPS/text/chapter-01.xhtml": image_page, "OEBPS/images/plate.png": TINY_PNG}
    return make_epub(folder / "images-only.epub", [("Plate", [])], extra_files=extra)


def unsupported_format(folder: Path) -> Path:
    path = folder / "book.pdf"
    path.write_bytes(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    return path


INVALID_BOOKS: dict[str, tuple[Callable[[Path], Path], tuple[str, ...]]] = {
    "missing path": (missing_path, ("file not found", "check the path")),
    "folder": (folder_named_epub, ("is a folder", "give the path of the book file itself")),
    "empty file": (empty_file, ("the file is empty", "check that the download or copy finished")),
    "random bytes": (random_bytes, ("not a zip archive", "re-download or re-export the book")),
    "truncated zip": (truncated_zip, ("truncated", "re-download or re-export the book")),
    "no container.xml": (
        zip_without_container,
        ("META-INF/container.xml is missing", "re-export the book as EPUB"),
    ),
    "no package document": (
        missing_package_document,
        ("package document OEBPS/content.opf", "is missing", "re-export the book as EPUB"),
    ),
    "drm": (drm_encrypted, ("DRM-encrypted", "OEBPS/text/chapter-01.xhtml", "DRM-free copy")),
    "no readable text": (no_readable_text, ("no readable text", "not only images")),
    "unsupported format": (unsupported_format, ("unsupported file type '.pdf'", *SUPPORTED_SUFFIXES)),
}
"""Case name: (maker, fragments the one error line must contain besides the path)."""


class BuildRun(NamedTuple):
    """One ``audiobook build`` run on an invalid book."""

    book: Path
    output: Path
    completed: subprocess.CompletedProcess


def build_invalid(tmp_path: Path, maker: Callable[[Path], Path], *options: str) -> BuildRun:
    """Make the book with ``maker`` and run ``audiobook build`` on it into an empty folder."""
    books = tmp_path / "books"
    books.mkdir(parents=True)
    output = tmp_path / "out"
    output.mkdir()
    book = maker(books)

    arguments = ("build", str(book), "-o", str(output / "book.m4b"), "--engine", "espeak", *options)
    return BuildRun(book, output, run_cli(*arguments, env=cli_environment(tmp_path), timeout=120))


@pytest.fixture(scope="module")
def invalid_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, BuildRun]:
    """One CLI run per case in INVALID_BOOKS, four at a time, because each run takes a second or two."""
    with ThreadPoolExecutor(max_workers=4) as executor:
        runs = {
            case: executor.submit(build_invalid, tmp_path_factory.mktemp(case.replace(" ", "-")), maker)
            for case, (maker, _) in INVALID_BOOKS.items()
        }
        return {case: run.result() for case, run in runs.items()}


@pytest.mark.parametrize("case", list(INVALID_BOOKS))
def test_invalid_book_one_error_line(invalid_runs, case):
    book, output, completed = invalid_runs[case]

    lines = completed.stderr.splitlines()
    assert completed.returncode == 2, completed.stderr
    assert len(lines) == 1, completed.stderr
    assert lines[0].startswith(f"Error: {book}: "), lines[0]
    for fragment in INVALID_BOOKS[case][1]:
        assert fragment in lines[0]
    assert "Traceback" not in completed.stderr
    assert completed.stdout == ""
    assert list(output.iterdir()) == []


@pytest.mark.parametrize("case", ["truncated zip", "drm"])
def test_invalid_book_verbose_shows_traceback(tmp_path, case):
    maker, fragments = INVALID_BOOKS[case]

    book, output, completed = build_invalid(tmp_path, maker, "-v")

    last_line = completed.stderr.splitlines()[-1]
    assert completed.returncode == 2
    assert "Traceback (most recent call last)" in completed.stderr
    assert "InvalidBookError" in completed.stderr
    assert last_line.startswith(f"Error: {book}: ")
    assert fragments[0] in last_line
    assert list(output.iterdir()) == []


def test_invalid_book_warnings_held_back(tmp_path):
    """A book whose only chapter file is missing: the warning is held back, and -v shows it."""

    def chapter_file_missing(folder: Path) -> Path:
        path = make_epub(folder / "hollow.epub", [("One", ["Text."])])
        with zipfile.ZipFile(path) as source:
            files = {
                name: source.read(name)
                for name in source.namelist()
                if name not in ("mimetype", "OEBPS/text/chapter-01.xhtml")
            }
        return write_epub(path, files)

    book, _, quiet = build_invalid(tmp_path / "quiet", chapter_file_missing)
    _, _, verbose = build_invalid(tmp_path / "verbose", chapter_file_missing, "-v")

    lines = quiet.stderr.splitlines()
    assert quiet.returncode == 2
    assert len(lines) == 1, quiet.stderr
    assert "no readable text" in lines[0]
    assert "run with -v to see 1 earlier warning" in lines[0]
    assert verbose.returncode == 2
    assert "WARNING pipeline.ingest.epub" in verbose.stderr
    assert "OEBPS/text/chapter-01.xhtml" in verbose.stderr


def test_invalid_lexicon_one_error_line(tmp_path):
    book = make_epub(tmp_path / "book.epub")
    lexicon = tmp_path / "names.lexicon"
    lexicon.write_text("# names\nHermione = Her-my-oh-nee\nTolkien\n", encoding="utf-8")
    output = tmp_path / "out"
    output.mkdir()

    completed = run_cli(
        "build", str(book), "-o", str(output / "book.m4b"), "--engine", "espeak", "--lexicon", str(lexicon),
        env=cli_environment(tmp_path), timeout=120,
    )

    lines = completed.stderr.splitlines()
    assert completed.returncode == 2
    assert len(lines) == 1, completed.stderr
    assert lines[0].startswith(f"Error: {lexicon}: line 3: ")
    assert "'word = replacement'" in lines[0]
    assert list(output.iterdir()) == []


@pytest.mark.parametrize("algorithm", [IDPF_OBFUSCATION, ADOBE_OBFUSCATION])
def test_font_obfuscation_inspects(tmp_path, algorithm):
    extra = {
        "META-INF/encryption.xml": encryption_xml(("OEBPS/fonts/serif.otf", algorithm)),
        "OEBPS/fonts/serif.otf": os.urandom(512),
    }
    book = make_epub(tmp_path / "fonts.epub", extra_files=extra)

    completed = run_cli(
        "inspect", str(book), "--engine", "espeak", env=cli_environment(tmp_path), timeout=120
    )

    assert completed.returncode == 0, completed.stderr
    assert "2 chapters" in completed.stdout


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", [IDPF_OBFUSCATION, ADOBE_OBFUSCATION])
def test_font_obfuscation_builds(tmp_path, algorithm):
    extra = {
        "META-INF/encryption.xml": encryption_xml(("OEBPS/fonts/serif.otf", algorithm)),
        "OEBPS/fonts/serif.otf": os.urandom(512),
    }
    book = make_epub(tmp_path / "fonts.epub", extra_files=extra)
    output = tmp_path / "fonts.m4b"

    completed = run_cli(
        "build", str(book), "-o", str(output), "--engine", "espeak", "--workers", "1",
        env=cli_environment(tmp_path), timeout=300,
    )

    assert completed.returncode == 0, completed.stderr
    assert output.stat().st_size > 0
    assert "Error" not in completed.stderr
