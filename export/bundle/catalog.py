"""Catalogue CSV ingestion (`id,image,title[,group]` and any other columns, kept as the row's fields): every bad row
is reported by its line number."""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from runtime.errors import CatalogError
from runtime.tools.tables import read_table, resolve_path

#: The columns the reader knows; every other named column is kept, as text, in CatalogRow.fields.
KNOWN_COLUMNS = ("id", "image", "title", "group")
#: How many problems an aborted build lists before "and N more".
_SHOWN_PROBLEMS = 20


@dataclass(frozen=True)
class CatalogRow:
    """A catalogue row as read from the CSV; ``line`` is kept for error messages. ``fields``: the row's other
    columns (price, SKU, URL, ...), in the CSV's order, which the bundle stores and each match returns."""

    line: int
    id: str
    image: Path
    title: str
    group: str
    fields: dict[str, str] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class Problem:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


def read_catalog_csv(path: Path) -> tuple[list[CatalogRow], list[Problem]]:
    """Parse the CSV; returns good rows and problems (empty fields, duplicate ids, missing images)."""
    rows: list[CatalogRow] = []
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    unreadable: list[tuple[int, str]] = []
    for line, row in read_table(path, KNOWN_COLUMNS[:3], KNOWN_COLUMNS[3:], problems=unreadable, others=True):
        empty = [name for name in ("id", "image", "title") if not row[name]]
        if empty:
            problems.append(Problem(line, f"empty {', '.join(empty)}"))
            continue
        if row["id"] in seen:
            problems.append(Problem(line, f"duplicate id {row['id']!r} (first on line {seen[row['id']]})"))
            continue
        seen[row["id"]] = line
        image = resolve_path(row["image"], path)
        try:
            found = image.is_file()
        except (OSError, ValueError) as exc:  # a name too long for the file system, a NUL byte, ...
            problems.append(Problem(line, f"image path cannot be used ({exc.strerror if isinstance(exc, OSError) else exc})"))
            continue
        if not found:
            problems.append(Problem(line, f"image not found: {image}"))
            continue
        fields = {name: value for name, value in row.items() if name not in KNOWN_COLUMNS}
        rows.append(CatalogRow(line, row["id"], image, row["title"], row["group"] or row["id"], fields))
    problems.extend(Problem(line, message) for line, message in unreadable)
    return rows, sorted(problems, key=lambda problem: problem.line)


def settle_problems(source: Path, problems: list[Problem], skip_bad: bool) -> None:
    """Abort on problems unless ``skip_bad``; skipped rows are still listed on stderr, never dropped silently."""
    if not problems:
        return
    if not skip_bad:
        shown = "; ".join(str(p) for p in problems[:_SHOWN_PROBLEMS])
        more = f"; and {len(problems) - _SHOWN_PROBLEMS} more" if len(problems) > _SHOWN_PROBLEMS else ""
        raise CatalogError(f"{source}: {len(problems)} bad row(s): {shown}{more} (use --skip-bad to skip them)")
    for problem in problems:
        print(f"shadematch: skipping {source} {problem}", file=sys.stderr)
