"""runtime.bundle.catalog.CatalogRows: catalog.jsonl parsed on access, same rows as the eager reader."""
from __future__ import annotations

from pathlib import Path

import pytest

from runtime.bundle.catalog import CatalogItem, CatalogRows, read_catalog, write_catalog
from runtime.errors import BundleError


def items(n: int) -> list[CatalogItem]:
    return [CatalogItem(f"id{i}", f"Titre n°{i} — ünïcode", f"img/{i}.jpg", f"g{i // 3}") for i in range(n)]


def test_same_rows_as_the_eager_reader(tmp_path: Path) -> None:
    path = tmp_path / "catalog.jsonl"
    write_catalog(items(50), path)
    rows = CatalogRows(path)
    assert len(rows) == 50
    assert list(rows) == read_catalog(path) == items(50)
    assert rows[-1] == items(50)[-1] and rows[10:13] == items(50)[10:13]
    with pytest.raises(IndexError):
        rows[50]


def test_file_without_final_newline_and_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "catalog.jsonl"
    write_catalog(items(3), path)
    path.write_bytes(path.read_bytes().rstrip(b"\n"))
    assert list(CatalogRows(path)) == items(3)
    path.write_bytes(b"")
    assert len(CatalogRows(path)) == 0


def test_malformed_rows_name_their_line(tmp_path: Path) -> None:
    path = tmp_path / "catalog.jsonl"
    write_catalog(items(5), path)
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:2] + [b'{"id": "x"}\n'] + lines[3:]))
    rows = CatalogRows(path)  # first and last rows are fine: opening succeeds
    with pytest.raises(BundleError, match=r"catalog.jsonl line 3: malformed catalogue row"):
        rows[2]
    path.write_bytes(b"".join(lines[:4]) + b"not json\n")
    with pytest.raises(BundleError, match=r"line 5: malformed"):
        CatalogRows(path)  # the last row is checked at opening
    with pytest.raises(BundleError, match="cannot be read"):
        CatalogRows(tmp_path / "missing.jsonl")
