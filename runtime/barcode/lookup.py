"""The catalogue's GTINs (its ``gtin`` field) -> the row a barcode answers with: the product's first row."""
from __future__ import annotations

from typing import Sequence

from ..bundle.catalog import CatalogItem, CatalogRows
from .gtin import gtin_problem, normal_gtin

#: The catalogue field a barcode is looked up in (a feed's attribute, a CSV's column).
GTIN_FIELD = "gtin"


class GtinLookup:
    """Read-only after construction, so safe across threads."""

    def __init__(self, rows: dict[str, int]) -> None:
        self._rows = rows

    @classmethod
    def from_catalog(cls, catalog: Sequence[CatalogItem]) -> "GtinLookup | None":
        """The catalogue's lookup, or None when no row has a GTIN (then no photo is read for a barcode). A value
        that is no GTIN (a bundle built before build checked them) is left out."""
        if isinstance(catalog, CatalogRows):
            pairs = catalog.field_values(GTIN_FIELD)
        else:
            pairs = [(row, item.fields[GTIN_FIELD]) for row, item in enumerate(catalog) if GTIN_FIELD in item.fields]
        rows: dict[str, int] = {}
        for row, value in pairs:
            if gtin_problem(value) is None:
                rows.setdefault(normal_gtin(value), row)
        return cls(rows) if rows else None

    def __len__(self) -> int:
        return len(self._rows)

    def row(self, gtins: Sequence[str]) -> int | None:
        """The catalogue row of the first of ``gtins`` (normal 14-digit spellings) the catalogue holds, or None."""
        for gtin in gtins:
            if gtin in self._rows:
                return self._rows[gtin]
        return None
