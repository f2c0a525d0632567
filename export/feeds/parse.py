"""Google Merchant Center product feeds, as TSV, CSV or XML (RSS 2.0 or Atom with the ``g:`` namespace), read into
products: the attributes a bundle uses by name, every other one kept as text for the match's fields.

Attribute names are compared as Merchant Center does: case and a ``g:`` prefix do not matter, and a space is an
underscore ("image link" is image_link). In a text feed additional_image_link holds comma-separated URLs; in XML
it may be repeated. XML is read with the standard library's expat parser, which expands no external entities and
(expat >= 2.4.1, bundled with Python 3.11) refuses entity-expansion bombs.
"""
from __future__ import annotations

import csv
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from runtime.barcode.gtin import gtin_problem
from runtime.errors import CatalogError

from ..bundle.catalog import Problem

#: Attributes the feed reader consumes; all others travel as fields.
IMAGE_ATTRIBUTES = ("image_link", "additional_image_link")
_REQUIRED = ("id", "title", "image_link")
_GOOGLE_NS = "http://base.google.com/ns/1.0"
_ATOM_NS = "http://www.w3.org/2005/Atom"


@dataclass(frozen=True)
class FeedProduct:
    """One feed entry. ``where``/``number`` name it in messages (a text feed's line, an XML feed's item number);
    ``images``: image_link first, then the additional ones; ``attributes``: the others, in feed order."""

    where: str
    number: int
    id: str
    title: str
    images: tuple[str, ...]
    attributes: dict[str, str] = field(default_factory=dict, hash=False)

    def text(self) -> str:
        """What the text map reads (the title, the brand and the description), so products that share a title
        but not a maker or a description are told apart by their words too."""
        parts = [self.title, self.attributes.get("brand", ""), self.attributes.get("description", "")]
        return ". ".join(part for part in parts if part)


def attribute_name(name: str) -> str:
    """Merchant Center's spelling of an attribute: lower case, no ``g:``, underscores for spaces."""
    name = name.strip().lower()
    name = name.removeprefix("g:")
    return "_".join(name.split())


def read_feed(path: Path) -> tuple[list[FeedProduct], list[Problem]]:
    """The feed file's usable products and its bad entries (see parse_feed)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CatalogError(f"{path}: no such file") from None
    except OSError as exc:
        raise CatalogError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    return parse_feed(str(path), data)


def parse_feed(name: str, data: bytes) -> tuple[list[FeedProduct], list[Problem]]:
    """The usable products of a feed's bytes and its bad entries (no id, title or image_link, a duplicate id, a
    GTIN with a wrong check digit); bytes that are no feed at all are a CatalogError naming ``name``."""
    start = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    entries = _xml_entries(name, data) if start.startswith(b"<") else _text_entries(name, data)
    products: list[FeedProduct] = []
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for where, number, attributes in entries:
        problem = _entry_problem(attributes, seen)
        if problem is not None:
            problems.append(Problem(number, problem, where))
            continue
        seen[attributes["id"]] = number
        images = [attributes["image_link"]] + _additional(attributes.get("additional_image_link", ""))
        kept = {name: value for name, value in attributes.items()
                if name not in IMAGE_ATTRIBUTES and name not in ("id", "title") and value}
        products.append(FeedProduct(where, number, attributes["id"], attributes["title"], tuple(images), kept))
    return products, problems


def _entry_problem(attributes: dict[str, str], seen: dict[str, int]) -> str | None:
    empty = [name for name in _REQUIRED if not attributes.get(name)]
    if empty:
        return f"empty {', '.join(empty)}"
    if attributes["id"] in seen:
        return f"duplicate id {attributes['id']!r} (first at {seen[attributes['id']]})"
    if attributes.get("gtin"):
        return gtin_problem(attributes["gtin"])
    return None


def _additional(value: str) -> list[str]:
    return [url.strip() for url in value.split(",") if url.strip()]


def _text_entries(path: str, data: bytes) -> Iterator[tuple[str, int, dict[str, str]]]:
    """TSV (Merchant Center's own text format) or CSV, told apart by the header line."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CatalogError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    header_line = text.split("\n", 1)[0]
    delimiter = "\t" if "\t" in header_line else ","
    reader = csv.reader(text.splitlines(), delimiter=delimiter)
    try:
        header = [attribute_name(name) for name in next(reader, [])]
        missing = [name for name in _REQUIRED if name not in header]
        if missing:
            raise CatalogError(f"{path} line 1: not a product feed: missing attribute(s) {', '.join(missing)}; "
                               f"the header is {', '.join(header) or 'empty'}")
        for values in reader:
            if not any(value.strip() for value in values):
                continue
            attributes: dict[str, str] = {}
            for name, value in zip(header, values):
                if name:
                    attributes[name] = ", ".join(filter(None, (attributes.get(name, ""), value.strip())))
            yield "line", reader.line_num, attributes
    except csv.Error as exc:
        raise CatalogError(f"{path}: malformed {'TSV' if delimiter == chr(9) else 'CSV'} ({exc})") from None


def _xml_entries(path: str, data: bytes) -> Iterator[tuple[str, int, dict[str, str]]]:
    """RSS 2.0 ``channel/item`` or Atom ``entry`` elements; Atom's link is its href, its summary the description."""
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError as exc:
        raise CatalogError(f"{path}: malformed XML ({exc})") from None
    if root.tag == f"{{{_ATOM_NS}}}feed":
        elements = root.findall(f"{{{_ATOM_NS}}}entry")
    elif root.tag == "rss":
        elements = root.findall("channel/item")
    else:
        raise CatalogError(f"{path}: XML but not a product feed (root element {root.tag!r}, not rss or an Atom feed)")
    for number, element in enumerate(elements, start=1):
        attributes: dict[str, str] = {}
        for child in element:
            name = _local_name(child.tag)
            if name == "summary":
                name = "description"
            value = child.get("href", "") if name == "link" and child.get("href") else (child.text or "")
            if len(child) or not value.strip():
                continue  # nested groups (shipping, tax) carry no single text value
            value = value.strip()
            if name == "additional_image_link" and name in attributes:
                attributes[name] = f"{attributes[name]}, {value}"
            elif name not in attributes or child.tag.startswith(f"{{{_GOOGLE_NS}}}"):
                attributes[name] = value  # g:title wins over the plain title it repeats
        yield "item", number, attributes


def _local_name(tag: str) -> str:
    return attribute_name(tag.rsplit("}", 1)[-1])
