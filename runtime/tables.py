"""CSV tables given by users (catalogues, query lists): header checks and line-numbered rows."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterator

from .errors import CatalogError


def read_table(path: Path, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (line number, row) with every required column; values are stripped, missing optionals ''."""
    try:
        handle = open(path, newline="", encoding="utf-8-sig")
    except FileNotFoundError:
        raise CatalogError(f"{path}: no such file") from None
    except OSError as exc:
        raise CatalogError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    with handle:
        try:
            reader = csv.DictReader(handle)
            header = [name.strip() for name in (reader.fieldnames or [])]
            missing = [name for name in required if name not in header]
            if not header:
                raise CatalogError(f"{path}: empty file; expected a header with columns {', '.join(required)}")
            if missing:
                raise CatalogError(
                    f"{path} line 1: missing column(s) {', '.join(missing)}; the header is {', '.join(header)}"
                )
            reader.fieldnames = header
            for row in reader:
                if None in row:
                    raise CatalogError(f"{path} line {reader.line_num}: more fields than the header has")
                yield reader.line_num, {
                    name: (row.get(name) or "").strip() for name in (*required, *optional)
                }
        except UnicodeDecodeError:
            raise CatalogError(f"{path}: not UTF-8 text") from None
        except csv.Error as exc:
            raise CatalogError(f"{path}: malformed CSV ({exc})") from None


def resolve_path(value: str, table_path: Path) -> Path:
    """Image paths in a table are relative to the table's folder unless absolute."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else (table_path.parent / path)
