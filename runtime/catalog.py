"""Catalogue rows of a bundle: what a match shows a shopper (title, image, product group)."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from .errors import BundleError


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
