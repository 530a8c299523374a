"""Hostile books: paths out of the archive, XML entities, fetches, billion laughs and zip bombs.

Every book here is generated in tmp_path. Sentinel files beside the book must never be
read into the text nor written, and a local HTTP server on 127.0.0.1 must see no request.
"""

from __future__ import annotations

import ast
import http.server
import json
import logging
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.errors import InvalidBookError
from pipeline.ingest import read_book
from tests.checks import run_cli
from tests.fixtures.books import XHTML, make_epub, nav_document, package_document, write_epub, xhtml_document

logger = logging.getLogger(__name__)

SECRET = "SENTINEL-SECRET-CONTENT"
"""Text of the sentinel files, which must never appear in a book's text or a message."""

REPOSITORY = Path(__file__).resolve().parents[1]

MAX_SECONDS = 10.0
"""Wall time within which a hostile book must be rejected, CLI start-up included."""

MAX_RSS_GROWTH_BYTES = 200_000_000
"""Peak resident memory that reading a hostile book may add to the process (200 MB)."""

NAV = ("nav", "nav.xhtml", XHTML, "nav")
CHAPTER = "OEBPS/text/chapter-01.xhtml"
"""The first chapter of a :func:`make_epub` book, which the tests replace with hostile markup."""

XXE_BODY = '<html xmlns="http://www.w3.org/1999/xhtml"><body><p>&xxe;</p></body></html>'


@pytest.fixture
def sentinel(tmp_path: Path) -> Path:
    """A file outside every book, holding SECRET, with its original modification time."""
    path = tmp_path / "sentinel.xhtml"
    path.write_text(xhtml_document(f"<p>{SECRET}</p>"), encoding="utf-8")
    return path


@pytest.fixture
def books(tmp_path: Path) -> Path:
    """The folder the hostile books are written to, beside the sentinel."""
    folder = tmp_path / "books"
    folder.mkdir()
    return folder


def assert_sentinel_untouched(sentinel: Path, original: bytes, mtime: int) -> None:
    assert sentinel.read_bytes() == original
    assert sentinel.stat().st_mtime_ns == mtime


def book_text(path: Path) -> str:
    return "\n".join(paragraph for chapter in read_book(path).chapters for paragraph in chapter.paragraphs)


def one_chapter_book(path: Path, body: str, *, extra: dict[str, str | bytes] | None = None) -> Path:
    """Write an EPUB 3 with one chapter ``a.xhtml`` holding ``body`` and a nav linking it."""
    files: dict[str, str | bytes] = {
        "OEBPS/a.xhtml": xhtml_document(body),
        "OEBPS/nav.xhtml": nav_document([("A", "a.xhtml")]),
        "OEBPS/content.opf": package_document([("a", "a.xhtml", XHTML, ""), NAV], ["a"]),
    }
    files.update(extra or {})
    return write_epub(path, files)


# Zip member names that leave the archive


@pytest.mark.parametrize(
    "template", ["../sentinel.xhtml", "{tmp}/sentinel.xhtml", "%2e%2e/sentinel.xhtml", "OEBPS/../../sentinel.xhtml"]
)
def test_zip_slip_member_never_written(tmp_path, sentinel, template, books):
    original, mtime = sentinel.read_bytes(), sentinel.stat().st_mtime_ns
    name = template.format(tmp=tmp_path).lstrip("/")
    name = "/" + name if template.startswith("{tmp}") else name
    book = make_epub(books / "slip.epub", extra_files={name: "<p>overwritten</p>"})
    output = tmp_path / "out"
    output.mkdir()

    completed = run_cli("build", str(book), "-o", str(output / "slip.m4b"), "--engine", "espeak", timeout=120)

    assert completed.returncode == 2
    assert "member name" in completed.stderr
    assert_sentinel_untouched(sentinel, original, mtime)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["books", "out", "sentinel.xhtml"]
    assert list(output.iterdir()) == []


# Links that leave the archive


@pytest.mark.parametrize(
    "href",
    [
        "../../sentinel.xhtml",
        "../%2e%2e/sentinel.xhtml",
        "%2E%2E/%2E%2E/sentinel.xhtml",
        "{tmp}/sentinel.xhtml",
        "file://{tmp}/sentinel.xhtml",
        "..%2f..%2fsentinel.xhtml",
    ],
)
def test_outside_hrefs_ignored(tmp_path, sentinel, href, books):
    original, mtime = sentinel.read_bytes(), sentinel.stat().st_mtime_ns
    target = href.format(tmp=tmp_path)
    files = {
        "OEBPS/a.xhtml": xhtml_document("<p>Inside text.</p>"),
        "OEBPS/nav.xhtml": nav_document([("A", "a.xhtml"), ("Escape", target)]),
        "OEBPS/content.opf": package_document(
            [("a", "a.xhtml", XHTML, ""), ("escape", target, XHTML, ""), NAV],
            ["a", "escape"],
        ),
    }
    book = write_epub(books / "links.epub", files)

    text = book_text(book)

    assert text == "Inside text."
    assert SECRET not in text
    assert_sentinel_untouched(sentinel, original, mtime)


def test_container_rootfile_outside_book_rejected(tmp_path, sentinel, books):
    container = (
        '<?xml version="1.0"?><container xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
        '<rootfiles><rootfile full-path="../sentinel.xhtml" media-type="application/oebps-package+xml"/>'
        "</rootfiles></container>"
    )
    book = make_epub(books / "rootfile.epub", extra_files={"META-INF/container.xml": container})

    with pytest.raises(InvalidBookError) as raised:
        read_book(book)

    assert "is missing" in str(raised.value)
    assert SECRET not in str(raised.value)


def test_resource_links_not_followed(tmp_path, sentinel):
    body = (
        f'<link rel="stylesheet" href="file://{sentinel}"/>'
        '<p>Before <img src="../../sentinel.xhtml" alt=""/> after.</p>'
        f'<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="file://{sentinel}" parse="text"/>'
        f'<object data="file://{sentinel}"></object><iframe src="../../sentinel.xhtml"></iframe>'
    )

    text = book_text(one_chapter_book(tmp_path / "links.epub", body))

    assert text == "Before after."


def test_inspect_never_prints_outside_text(tmp_path, sentinel, books):
    files = {
        "OEBPS/a.xhtml": xhtml_document("<p>Inside text.</p>"),
        "OEBPS/nav.xhtml": nav_document([("A", "a.xhtml"), ("Escape", "../../sentinel.xhtml")]),
        "OEBPS/content.opf": package_document(
            [("a", "a.xhtml", XHTML, ""), ("escape", "../../sentinel.xhtml", XHTML, ""), NAV],
            ["a", "escape"],
        ),
    }
    book = write_epub(books / "links.epub", files)

    completed = run_cli("inspect", str(book), "--json", "--engine", "espeak", timeout=120)

    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["sentence_count"] == 1
    assert SECRET not in completed.stdout
    assert SECRET not in completed.stderr


# XML entities and fetches


def external_entity(sentinel: Path, root: str = "html") -> str:
    return f'<?xml version="1.0"?>\n<!DOCTYPE {root} [<!ENTITY xxe SYSTEM "file://{sentinel}">]>\n'


@pytest.mark.parametrize(
    "member", ["OEBPS/content.opf", "OEBPS/nav.xhtml", "META-INF/encryption.xml", "OEBPS/toc.ncx"]
)
def test_external_entity_any_member_rejected(tmp_path, sentinel, member, books):
    original, mtime = sentinel.read_bytes(), sentinel.stat().st_mtime_ns
    hostile = external_entity(sentinel, "root") + "<root>&xxe;</root>"
    toc = "ncx" if member.endswith(".ncx") else "nav"
    book = make_epub(books / "xxe.epub", toc=toc, extra_files={member: hostile})

    with pytest.raises(InvalidBookError, match="declares XML entities") as raised:
        read_book(book)

    assert SECRET not in str(raised.value)
    assert_sentinel_untouched(sentinel, original, mtime)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32"])
def test_external_entity_other_encodings_rejected(tmp_path, sentinel, encoding):
    declaration = f'<?xml version="1.0" encoding="{encoding.upper()}"?>\n'
    hostile = declaration + external_entity(sentinel).split("\n", 1)[1]
    hostile += '<html xmlns="http://www.w3.org/1999/xhtml"><body><p>&xxe;</p></body></html>'
    book = make_epub(tmp_path / "xxe.epub", extra_files={CHAPTER: hostile.encode(encoding)})

    with pytest.raises(InvalidBookError, match="declares XML entities") as raised:
        read_book(book)

    assert SECRET not in str(raised.value)


def test_parameter_entity_rejected(tmp_path, sentinel):
    hostile = (
        f'<?xml version="1.0"?><!DOCTYPE html [<!ENTITY % remote SYSTEM "file://{sentinel}"> %remote;]>'
        '<html xmlns="http://www.w3.org/1999/xhtml"><body><p>Text.</p></body></html>'
    )
    book = make_epub(tmp_path / "pe.epub", extra_files={CHAPTER: hostile})

    with pytest.raises(InvalidBookError, match="declares XML entities"):
        read_book(book)


def test_external_entity_in_malformed_html_rejected(tmp_path, sentinel):
    """A document that fails strict XML parsing must not reach the HTML parser with its entities."""
    hostile = external_entity(sentinel) + "<html><body><p>&xxe;<p>unclosed</body></html>"
    book = make_epub(tmp_path / "html.epub", extra_files={CHAPTER: hostile})

    with pytest.raises(InvalidBookError, match="declares XML entities") as raised:
        read_book(book)

    assert SECRET not in str(raised.value)


def test_external_entity_in_html_book_rejected(tmp_path, sentinel):
    book = tmp_path / "book.xhtml"
    book.write_text(external_entity(sentinel) + XXE_BODY)

    with pytest.raises(InvalidBookError, match="declares XML entities") as raised:
        read_book(book)

    assert SECRET not in str(raised.value)


def test_external_entity_via_cli_one_line(tmp_path, sentinel, books):
    hostile = external_entity(sentinel) + XXE_BODY
    book = make_epub(books / "xxe.epub", extra_files={CHAPTER: hostile})
    output = tmp_path / "out"
    output.mkdir()

    completed = run_cli("build", str(book), "-o", str(output / "xxe.m4b"), "--engine", "espeak", timeout=120)

    assert completed.returncode == 2
    assert len(completed.stderr.splitlines()) == 1, completed.stderr
    assert "declares XML entities" in completed.stderr
    assert SECRET not in completed.stderr + completed.stdout
    assert list(output.iterdir()) == []


class CountingHandler(http.server.BaseHTTPRequestHandler):
    """Serves a DTD that would define an entity on every GET, and records each request path."""

    requests: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (the name http.server requires)
        CountingHandler.requests.append(self.path)
        body = f'<!ENTITY fetched "{SECRET}">'.encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/xml-dtd")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (signature from http.server)
        logger.debug("test server: " + format, *args)


@pytest.fixture
def local_server() -> Iterator[str]:
    """An HTTP server on 127.0.0.1 that records the paths requested from it."""
    CountingHandler.requests = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), CountingHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_remote_references_never_fetched(tmp_path, local_server):
    doctype = f'<?xml version="1.0"?>\n<!DOCTYPE html SYSTEM "{local_server}/content.dtd">\n'
    chapter = doctype + (
        '<html xmlns="http://www.w3.org/1999/xhtml" xmlns:xi="http://www.w3.org/2001/XInclude"><body>'
        f'<p>Kept text.</p><xi:include href="{local_server}/include.xml" parse="text"/>'
        f'<p><img src="{local_server}/image.png" alt=""/></p></body></html>'
    )
    container = (
        f'<?xml version="1.0"?><!DOCTYPE container SYSTEM "{local_server}/container.dtd">'
        '<container xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles>'
        '<rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>'
        "</rootfiles></container>"
    )
    nav = nav_document([("A", "a.xhtml"), ("Remote", f"{local_server}/remote.xhtml")])
    opf = package_document(
        [("a", "a.xhtml", XHTML, ""), ("remote", f"{local_server}/remote.xhtml", XHTML, ""), NAV],
        ["a", "remote"],
    )
    files = {
        "OEBPS/a.xhtml": chapter,
        "OEBPS/nav.xhtml": nav,
        "OEBPS/content.opf": opf,
        "META-INF/container.xml": container,
    }

    text = book_text(write_epub(tmp_path / "fetch.epub", files))

    assert text == "Kept text."
    assert CountingHandler.requests == []


# Billion laughs and zip bombs, with time and memory measured in a child process

MEASURE_SCRIPT = """
import json, resource, sys, time
from pipeline.errors import InvalidBookError
from pipeline.ingest import read_book

baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.monotonic()
try:
    read_book(sys.argv[1])
    error = ""
except InvalidBookError as err:
    error = str(err)
seconds = time.monotonic() - started
growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - baseline) * 1024
sys.stdout.write(json.dumps({"error": error, "seconds": seconds, "rss_growth": growth}))
"""
"""Reads one book and prints the error, the wall time and the peak RSS growth (ru_maxrss is KiB on Linux)."""


def measure_read(book: Path) -> dict:
    """Run read_book on ``book`` in a fresh interpreter and return its measurements."""
    completed = subprocess.run(
        [sys.executable, "-c", MEASURE_SCRIPT, str(book)],
        capture_output=True, text=True, timeout=120, check=False, cwd=REPOSITORY,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def billion_laughs(levels: int = 10) -> str:
    entities = '<!ENTITY lol0 "lol">' + "".join(
        f'<!ENTITY lol{level} "{f"&lol{level - 1};" * 10}">' for level in range(1, levels)
    )
    return (
        f'<?xml version="1.0"?><!DOCTYPE html [{entities}]>'
        f'<html xmlns="http://www.w3.org/1999/xhtml"><body><p>&lol{levels - 1};</p></body></html>'
    )


def zero_bomb(path: Path, mebibytes: int) -> Path:
    """Write an EPUB whose one chapter is ``mebibytes`` MiB of zeros, deflated (1000 to 1 or so)."""
    files = {
        "OEBPS/nav.xhtml": nav_document([("Huge", "huge.xhtml")]),
        "OEBPS/content.opf": package_document(
            [("huge", "huge.xhtml", XHTML, ""), NAV], ["huge"]
        ),
    }
    write_epub(path, files)

    zeros = bytes(1024 * 1024)
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        with archive.open("OEBPS/huge.xhtml", "w", force_zip64=True) as member:
            for _ in range(mebibytes):
                member.write(zeros)
    return path


@pytest.fixture(scope="module")
def gigabyte_bomb(tmp_path_factory) -> Path:
    """An EPUB whose one chapter decompresses to 1 GiB of zeros (about 5 MB on disk)."""
    return zero_bomb(tmp_path_factory.mktemp("bomb") / "gigabyte.epub", 1024)


def test_gigabyte_zip_bomb_bounded(gigabyte_bomb):
    measured = measure_read(gigabyte_bomb)

    assert "zip bomb" in measured["error"]
    assert measured["seconds"] < MAX_SECONDS
    assert measured["rss_growth"] < MAX_RSS_GROWTH_BYTES


def test_zip_bomb_under_size_limit_bounded(tmp_path):
    """120 MiB of zeros is under the size limit of one member, so the compression ratio must stop it."""
    measured = measure_read(zero_bomb(tmp_path / "ratio.epub", 120))

    assert "zip bomb" in measured["error"]
    assert "times its compressed size" in measured["error"]
    assert measured["seconds"] < MAX_SECONDS
    assert measured["rss_growth"] < MAX_RSS_GROWTH_BYTES


def test_billion_laughs_bounded(tmp_path):
    book = make_epub(tmp_path / "laughs.epub", extra_files={CHAPTER: billion_laughs()})

    measured = measure_read(book)

    assert "declares XML entities" in measured["error"]
    assert measured["seconds"] < MAX_SECONDS
    assert measured["rss_growth"] < MAX_RSS_GROWTH_BYTES


def test_billion_laughs_in_html_book_bounded(tmp_path):
    book = tmp_path / "laughs.html"
    book.write_text(billion_laughs())

    measured = measure_read(book)

    assert "declares XML entities" in measured["error"]
    assert measured["seconds"] < MAX_SECONDS
    assert measured["rss_growth"] < MAX_RSS_GROWTH_BYTES


@pytest.mark.parametrize("hostile", ["zip bomb", "billion laughs"])
def test_hostile_book_via_cli_quick(tmp_path, gigabyte_bomb, hostile):
    book = gigabyte_bomb
    if hostile == "billion laughs":
        book = make_epub(tmp_path / "laughs.epub", extra_files={CHAPTER: billion_laughs()})
    output = tmp_path / "out"
    output.mkdir()

    started = time.monotonic()
    completed = run_cli(
        "build", str(book), "-o", str(output / "hostile.m4b"), "--engine", "espeak", timeout=120
    )
    seconds = time.monotonic() - started

    assert completed.returncode == 2
    assert len(completed.stderr.splitlines()) == 1, completed.stderr
    assert seconds < MAX_SECONDS
    assert list(output.iterdir()) == []


# Every XML and HTML parse goes through safexml

PARSER_MODULES = (
    "xml.etree", "xml.dom", "xml.sax", "xml.parsers", "lxml.html", "lxml.objectify", "defusedxml", "bs4", "html5lib"
)
"""Modules whose every use parses markup; only pipeline/ingest/safexml.py may import them."""

ETREE_PARSE_FUNCTIONS = frozenset(
    {
        "fromstring", "fromstringlist", "parse", "XML", "HTML", "XMLID", "iterparse",
        "XMLParser", "HTMLParser", "XMLPullParser",
    }
)
"""lxml.etree functions and classes that parse; building or serializing elements is allowed."""

SAFE_PARSER_FILE = "pipeline/ingest/safexml.py"


def unsafe_parses(source: str) -> list[str]:
    """Return ``line: call`` for every markup parse or parser import in ``source``."""
    tree = ast.parse(source)
    etree_names: set[str] = set()
    findings: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(PARSER_MODULES):
                    findings.append(f"{node.lineno}: import {alias.name}")
                if alias.name == "lxml.etree":
                    etree_names.add(alias.asname or "lxml.etree")
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                full_name = f"{node.module}.{alias.name}"
                if full_name.startswith(PARSER_MODULES) or node.module.startswith(PARSER_MODULES):
                    findings.append(f"{node.lineno}: from {node.module} import {alias.name}")
                elif full_name == "lxml.etree":
                    etree_names.add(alias.asname or alias.name)
                elif node.module == "lxml.etree" and alias.name in ETREE_PARSE_FUNCTIONS:
                    findings.append(f"{node.lineno}: from lxml.etree import {alias.name}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ETREE_PARSE_FUNCTIONS:
            if ast.unparse(node.value) in etree_names:
                findings.append(f"{node.lineno}: {ast.unparse(node)}")
    return findings


def test_parse_finder_catches_parses():
    source = (
        "from lxml import etree as ET\nimport xml.dom.minidom\nfrom lxml import html\n"
        "from xml.etree import ElementTree\nfrom lxml.etree import fromstring\n"
        "ET.fromstring(b'<a/>')\nET.parse('x.xml')\nET.Element('a')\nET.tostring(x)\n"
    )

    findings = unsafe_parses(source)

    assert findings == [
        "2: import xml.dom.minidom",
        "3: from lxml import html",
        "4: from xml.etree import ElementTree",
        "5: from lxml.etree import fromstring",
        "6: ET.fromstring",
        "7: ET.parse",
    ]


def test_every_xml_parse_goes_through_safexml():
    sources = [
        path
        for folder in ("pipeline", "audiobook", "graphs")
        for path in sorted((REPOSITORY / folder).rglob("*.py"))
        if path.relative_to(REPOSITORY).as_posix() != SAFE_PARSER_FILE
    ]

    findings = {
        path.relative_to(REPOSITORY).as_posix(): unsafe_parses(path.read_text(encoding="utf-8"))
        for path in sources
    }

    assert len(sources) > 20
    assert {path: found for path, found in findings.items() if found} == {}
