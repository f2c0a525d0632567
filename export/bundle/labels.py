"""The catalogue side of label reading: the words read on every catalogue image, with the titles, indexed by
product (runtime.search.label_index)."""
from __future__ import annotations

from typing import Sequence

from runtime.search.label_index import LabelIndex, RowReads

from .catalog import CatalogRow
from .features import Reads


def label_index(rows: Sequence[CatalogRow], reads: Reads) -> LabelIndex:
    """Products (the rows' groups, numbered in order of first appearance) indexed by everything read on their
    images (each word weighted by its read confidence) and their titles (weight 1, each distinct title once)."""
    if len(rows) != len(reads):
        raise ValueError(f"need the words of every row, got {len(reads)} for {len(rows)} rows")
    number: dict[str, int] = {}
    row_product = [number.setdefault(row.group, len(number)) for row in rows]
    texts: list[list[tuple[str, float]]] = [[] for _ in number]
    titles: list[set[str]] = [set() for _ in number]
    for product, row, words in zip(row_product, rows, reads):
        texts[product].extend(words)
        if row.title and row.title not in titles[product]:
            titles[product].add(row.title)
            texts[product].append((row.title, 1.0))
    return LabelIndex.build(row_product, texts, RowReads.from_lists(reads))
