"""The one hardened XML and HTML parser setup that every ingest module parses through."""

from __future__ import annotations

import logging

from lxml import etree
from lxml import html as lxml_html

from pipeline.errors import InvalidBookError

logger = logging.getLogger(__name__)

_ENTITY_DECLARATION_MARKERS = (
    b"<!ENTITY",
    "<!ENTITY".encode("utf-16-le"),
    "<!ENTITY".encode("utf-16-be"),
)
"""An entity declaration as it appears in UTF-8, ASCII-compatible and UTF-16 bytes."""


def _xml_parser() -> etree.XMLParser:
    # A new parser per document, because lxml parsers must not be shared between threads
    # and Dask runs tasks in threads.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_pis=True,
    )


def _html_parser() -> lxml_html.HTMLParser:
    return lxml_html.HTMLParser(no_network=True, huge_tree=False, remove_pis=True)


def reject_entity_declarations(data: bytes, book: str, member: str) -> None:
    """Raise InvalidBookError when ``data`` declares XML entities.

    Entity declarations are how XXE (external entities reading local files) and
    billion-laughs (exponential expansion) attacks work. No EPUB needs them, so the
    raw bytes are checked before any parser runs.
    """
    if any(marker in data for marker in _ENTITY_DECLARATION_MARKERS):
        raise InvalidBookError(
            book,
            f"{member} declares XML entities (<!ENTITY>), which are not allowed",
            "the file may be crafted to attack XML readers; re-export the book with a trusted tool",
        )


def _reject_parsed_entities(tree: etree._ElementTree, book: str, member: str) -> None:
    """Catch entity declarations in encodings the byte scan does not cover."""
    dtd = tree.docinfo.internalDTD
    if dtd is not None and any(True for _ in dtd.iterentities()):
        raise InvalidBookError(
            book,
            f"{member} declares XML entities in its DOCTYPE, which are not allowed",
            "the file may be crafted to attack XML readers; re-export the book with a trusted tool",
        )


def parse_xml(data: bytes, book: str, member: str) -> etree._Element:
    """Parse a well-formed XML document (container, package, NCX, encryption) safely.

    Parameters
    ----------
    data
        The raw document bytes; the encoding comes from the XML declaration or BOM.
    book
        The book's path, for error messages.
    member
        The document's name inside the book, for error messages.

    Returns
    -------
    The root element. Entities are never resolved, DTDs never loaded and the network
    never used.

    Raises
    ------
    InvalidBookError
        When the document declares entities or is not well-formed XML.
    """
    reject_entity_declarations(data, book, member)

    try:
        root = etree.fromstring(data, _xml_parser())
    except etree.XMLSyntaxError as err:
        raise InvalidBookError(
            book, f"{member} is not well-formed XML ({err})", "repair the book with an EPUB editor"
        ) from err

    _reject_parsed_entities(root.getroottree(), book, member)
    return root


def parse_xhtml(data: bytes, book: str, member: str) -> etree._Element:
    """Parse an XHTML or HTML content document safely.

    The strict XML parser runs first. A document that is not well-formed XML (a common
    fault in real books) is parsed again with lxml's HTML parser, which also runs
    without network access or DTD loading.

    Raises
    ------
    InvalidBookError
        When the document declares entities or neither parser can read it.
    """
    reject_entity_declarations(data, book, member)

    try:
        root = etree.fromstring(data, _xml_parser())
    except etree.XMLSyntaxError as err:
        logger.info("%s in %s is not well-formed XML (%s); parsing it as HTML", member, book, err)
        return _parse_html(data, book, member)

    _reject_parsed_entities(root.getroottree(), book, member)
    return root


def _parse_html(data: bytes, book: str, member: str) -> etree._Element:
    try:
        root = lxml_html.document_fromstring(data, parser=_html_parser())
    except (etree.ParserError, etree.XMLSyntaxError, ValueError) as err:
        raise InvalidBookError(
            book, f"{member} cannot be parsed as HTML ({err})", "repair the book with an EPUB editor"
        ) from err

    _reject_parsed_entities(root.getroottree(), book, member)
    return root


def parse_html_fragment(text: str, book: str, member: str) -> etree._Element:
    """Parse a fragment of HTML markup, such as an escaped ``dc:description``, safely.

    Returns a ``div`` element that wraps the fragment. The hardened HTML parser runs
    without network access or DTD loading.

    Raises
    ------
    InvalidBookError
        When the fragment declares entities or the HTML parser cannot read it.
    """
    reject_entity_declarations(text.encode("utf-8"), book, member)

    try:
        return lxml_html.fragment_fromstring(text, create_parent="div", parser=_html_parser())
    except (etree.ParserError, etree.XMLSyntaxError, ValueError) as err:
        raise InvalidBookError(
            book,
            f"{member} contains HTML that cannot be parsed ({err})",
            "repair the book with an EPUB editor",
        ) from err
