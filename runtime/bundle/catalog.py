"""Catalogue rows of a bundle: what a match shows a shopper (title, image, product group, the catalogue's own
fields)."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence, overload

import numpy as np

from ..errors import BundleError


@dataclass(frozen=True)
class CatalogItem:
    """One catalogue image. ``group`` is the product identity: several images may show one product. ``fields``:
    the catalogue CSV's other columns (price, SKU, URL, ...) as text, in the CSV's order. ``text``: the words the
    text map reads when they are more than the title (a feed's title, brand and description); see ``words``."""

    id: str
    title: str
    image: str
    group: str
    fields: dict[str, str] = field(default_factory=dict, hash=False)
    text: str = ""

    @property
    def words(self) -> str:
        """What the text map reads: ``text`` when the catalogue gave more than a title, else the title."""
        return self.text or self.title

    def to_dict(self) -> dict[str, Any]:
        """The catalog.jsonl row; ``fields`` and ``text`` only when there are some, so a catalogue without extra columns writes
        the rows it always did (and a runtime that predates fields reads any row, ignoring the key)."""
        row: dict[str, Any] = {"id": self.id, "title": self.title, "image": self.image, "group": self.group}
        if self.fields:
            row["fields"] = self.fields
        if self.text:
            row["text"] = self.text
        return row

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> "CatalogItem":
        """A catalog.jsonl row (a bundle written before fields existed has none: empty); TypeError or KeyError
        when it is not one."""
        if not isinstance(row, dict):
            raise TypeError(f"a {type(row).__name__}, not an object")
        fields = row.get("fields") or {}
        if not isinstance(fields, dict):
            raise TypeError(f"fields is a {type(fields).__name__}, not an object")
        return cls(str(row["id"]), str(row["title"]), str(row["image"]), str(row["group"]),
                   {str(name): str(value) for name, value in fields.items()}, str(row.get("text") or ""))


def read_catalog(path: Path) -> list[CatalogItem]:
    """Read catalog.jsonl; the row order is the row number used by the index and the text map."""
    items = []
    try:
        with open(path, encoding="utf-8") as handle:
            for line_no, line in enumerate(handle, start=1):
                try:
                    items.append(CatalogItem.from_dict(json.loads(line)))
                except (json.JSONDecodeError, KeyError, TypeError) as exc:
                    raise BundleError(f"{path.name} line {line_no}: malformed catalogue row ({exc})") from None
    except OSError as exc:
        raise BundleError(f"{path.name}: cannot be read ({exc})") from None
    return items


def write_catalog(items: list[CatalogItem], path: Path) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for item in items:
            handle.write(json.dumps(item.to_dict(), ensure_ascii=False) + "\n")


class CatalogRows(Sequence[CatalogItem]):
    """catalog.jsonl read once as bytes and parsed row by row when a row is asked for.

    A kiosk shows 7 rows per query; parsing 500K rows into objects at start-up costs seconds (most of a
    bundle's load time), so rows are parsed on access. The first and last rows are parsed at opening, which
    catches a file of another format or a truncated one; the file's sha256 (checked at opening by default)
    covers the rest. Read-only, so safe across threads.
    """

    def __init__(self, path: Path) -> None:
        self.name = Path(path).name
        try:
            self._data = Path(path).read_bytes()
        except OSError as exc:
            raise BundleError(f"{self.name}: cannot be read ({exc})") from None
        ends = np.flatnonzero(np.frombuffer(self._data, dtype=np.uint8) == ord("\n"))
        if self._data and not self._data.endswith(b"\n"):
            ends = np.append(ends, len(self._data))
        self._ends = ends
        self._starts = np.concatenate([[0], ends[:-1] + 1]) if len(ends) else ends
        if len(self):
            self[0], self[len(self) - 1]

    def __len__(self) -> int:
        return len(self._ends)

    @overload
    def __getitem__(self, row: int) -> CatalogItem: ...

    @overload
    def __getitem__(self, row: slice) -> list[CatalogItem]: ...

    def __getitem__(self, row: int | slice) -> CatalogItem | list[CatalogItem]:
        if isinstance(row, slice):
            return [self[i] for i in range(*row.indices(len(self)))]
        if row < 0:
            row += len(self)
        if not 0 <= row < len(self):
            raise IndexError(f"catalogue row {row} out of range")
        try:
            return CatalogItem.from_dict(json.loads(self._data[self._starts[row] : self._ends[row]]))
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
            raise BundleError(f"{self.name} line {row + 1}: malformed catalogue row ({exc})") from None

    def __iter__(self) -> Iterator[CatalogItem]:
        for row in range(len(self)):
            yield self[row]

    def field_values(self, name: str) -> list[tuple[int, str]]:
        """(row, value) of every row whose fields hold ``name``, found in the file's bytes rather than by parsing
        every row (the barcode lookup is made at opening, for 500K rows too). JSON escapes each quote inside a
        string, so ``"name": "`` occurs only as a key, and the only keys a row may name freely are its fields'."""
        key = json.dumps(name, ensure_ascii=False).encode() + b': "'
        if key not in self._data:
            return []
        found = []
        for match in re.finditer(re.escape(key) + rb'((?:[^"\\]|\\.)*)"', self._data):
            row = int(np.searchsorted(self._ends, match.start()))
            found.append((row, json.loads(b'"' + match.group(1) + b'"')))
        return found
