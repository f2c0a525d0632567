"""Catalogue rows of a bundle: what a match shows a shopper (title, image, product group)."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator, Sequence, overload

import numpy as np

from ..errors import BundleError


@dataclass(frozen=True)
class CatalogItem:
    """One catalogue image. ``group`` is the product identity: several images may show one product."""

    id: str
    title: str
    image: str
    group: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def read_catalog(path: Path) -> list[CatalogItem]:
    """Read catalog.jsonl; the row order is the row number used by the index and the text map."""
    items = []
    try:
        with open(path, encoding="utf-8") as handle:
            for line_no, line in enumerate(handle, start=1):
                try:
                    row = json.loads(line)
                    items.append(CatalogItem(str(row["id"]), str(row["title"]), str(row["image"]), str(row["group"])))
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
            raw = json.loads(self._data[self._starts[row] : self._ends[row]])
            return CatalogItem(str(raw["id"]), str(raw["title"]), str(raw["image"]), str(raw["group"]))
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
            raise BundleError(f"{self.name} line {row + 1}: malformed catalogue row ({exc})") from None

    def __iter__(self) -> Iterator[CatalogItem]:
        for row in range(len(self)):
            yield self[row]
