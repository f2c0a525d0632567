"""CSV tables given by users (catalogues, query lists): header checks and line-numbered rows."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterator

from ..errors import CatalogError


def read_table(path: Path, required: tuple[str, ...], optional: tuple[str, ...] = (),
               problems: list[tuple[int, str]] | None = None, others: bool = False
               ) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (line number, row) with every required column; values are stripped, missing optionals ''.
    ``others``: the row also holds the header's other named columns, after the known ones, in the header's order
    (a header naming a column twice, or a known column in other letter case, is refused: see other_columns).

    A row that cannot be used as it is (bytes that are not UTF-8, more fields than the header) is a problem of
    that row: appended to ``problems`` as (line, message) and skipped when a list is given (a catalogue's
    --skip-bad), else a CatalogError naming its line. Only an unreadable header ends the whole table."""
    try:
        # surrogateescape: an undecodable byte stays in its row, where it is reported with the row's line
        handle = open(path, newline="", encoding="utf-8-sig", errors="surrogateescape")
    except FileNotFoundError:
        raise CatalogError(f"{path}: no such file") from None
    except OSError as exc:
        raise CatalogError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    with handle:
        try:
            reader = csv.DictReader(handle)
            header = [name.strip() for name in (reader.fieldnames or [])]
            if any(_undecodable(name) for name in header):
                raise CatalogError(f"{path} line 1: not UTF-8 text ({_undecodable(''.join(header))})")
            missing = [name for name in required if name not in header]
            if not header:
                raise CatalogError(f"{path}: empty file; expected a header with columns {', '.join(required)}")
            if missing:
                raise CatalogError(
                    f"{path} line 1: missing column(s) {', '.join(missing)}; the header is {', '.join(header)}"
                )
            reader.fieldnames = header
            names = (*required, *optional, *(other_columns(path, header, (*required, *optional)) if others else ()))
            for row in reader:
                problem = _row_problem(row)
                if problem is None:
                    yield reader.line_num, {name: (row.get(name) or "").strip() for name in names}
                elif problems is None:
                    raise CatalogError(f"{path} line {reader.line_num}: {problem}")
                else:
                    problems.append((reader.line_num, problem))
        except csv.Error as exc:
            raise CatalogError(f"{path}: malformed CSV ({exc})") from None


def other_columns(path: Path, header: list[str], known: tuple[str, ...]) -> list[str]:
    """The header's named columns beyond ``known``, in order. A name given twice would lose one column's values
    (the CSV reader keeps the last), and "Title" beside the known "title" is a typo rather than data: both are
    refused, naming the column. Unnamed columns (a trailing comma in the header) carry nothing and are left out."""
    seen: set[str] = set()
    for name in header:
        if name in seen and name:
            raise CatalogError(f"{path} line 1: the column {name!r} is named twice")
        seen.add(name)
    lowered = {name.casefold(): name for name in known}
    for name in header:
        if name not in known and name.casefold() in lowered:
            raise CatalogError(f"{path} line 1: the column {name!r} looks like {lowered[name.casefold()]!r}; "
                               "column names are case-sensitive")
    return [name for name in header if name and name not in known]


def _row_problem(row: dict) -> str | None:
    if None in row:
        return "more fields than the header has"
    for value in row.values():
        bad = _undecodable(value) if isinstance(value, str) else None
        if bad:
            return f"not UTF-8 text ({bad})"
    return None


def _undecodable(text: str) -> str | None:
    """The first byte that was not UTF-8 (kept as a surrogate by surrogateescape), described; None if all decoded."""
    for char in text:
        if "\udc80" <= char <= "\udcff":
            return f"byte 0x{ord(char) - 0xDC00:02x}"
    return None


def resolve_path(value: str, table_path: Path) -> Path:
    """Image paths in a table are relative to the table's folder unless absolute."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else (table_path.parent / path)
