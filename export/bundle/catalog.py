"""Catalogue CSV ingestion (`id,image,title[,group]` and any other columns, kept as the row's fields): every bad row
is reported by its line number."""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from runtime.barcode.gtin import gtin_problem
from runtime.bundle.catalog import CatalogItem
from runtime.errors import CatalogError
from runtime.tools.tables import read_table, resolve_path

#: The columns the reader knows; every other named column is kept, as text, in CatalogRow.fields.
KNOWN_COLUMNS = ("id", "image", "title", "group")
#: How many problems an aborted build lists before "and N more".
_SHOWN_PROBLEMS = 20


@dataclass(frozen=True)
class CatalogRow:
    """A catalogue row as read from the CSV or a feed; ``where`` ``line`` names it in error messages. ``fields``:
    the row's other columns (price, SKU, URL, ...), in the CSV's order, which the bundle stores and each match
    returns. ``text``: what the text map reads when it is more than the title (a feed's brand and description)."""

    line: int
    id: str
    image: Path
    title: str
    group: str
    fields: dict[str, str] = field(default_factory=dict, hash=False)
    text: str = ""
    where: str = "line"

    def item(self, image: str | None = None) -> CatalogItem:
        """The bundle's row for this one, shown by ``image`` (default: its own)."""
        return CatalogItem(self.id, self.title, str(self.image) if image is None else image, self.group,
                           self.fields, self.text)


@dataclass(frozen=True)
class Problem:
    """A bad row: ``where`` ``line`` names it ("line 7" of a CSV, "item 3" of an XML feed)."""

    line: int
    message: str
    where: str = "line"

    def __str__(self) -> str:
        return f"{self.where} {self.line}: {self.message}"


@dataclass(frozen=True)
class LoadedCatalog:
    """A catalogue read from wherever it came from (a CSV, a product feed), with its bad rows; ``note``: a line a
    build prints about how it was read (a feed's fetch counts), or ''."""

    source: Path | str
    rows: list[CatalogRow]
    problems: list[Problem]
    note: str = ""


def load_catalog(source: Path | LoadedCatalog) -> LoadedCatalog:
    """``source`` as it is when already read (a feed), else its catalogue CSV read."""
    if isinstance(source, LoadedCatalog):
        return source
    rows, problems = read_catalog_csv(source)
    return LoadedCatalog(source, rows, problems)


def read_catalog_csv(path: Path) -> tuple[list[CatalogRow], list[Problem]]:
    """Parse the CSV; returns good rows and problems (empty fields, duplicate ids, missing images, a ``gtin`` with a
    wrong check digit: a barcode would never find it)."""
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
        wrong_gtin = gtin_problem(fields["gtin"]) if fields.get("gtin") else None
        if wrong_gtin:
            problems.append(Problem(line, wrong_gtin))
            continue
        rows.append(CatalogRow(line, row["id"], image, row["title"], row["group"] or row["id"], fields))
    problems.extend(Problem(line, message) for line, message in unreadable)
    return rows, sorted(problems, key=lambda problem: problem.line)


def settle_problems(source: Path | str, problems: list[Problem], skip_bad: bool) -> None:
    """Abort on problems unless ``skip_bad``; skipped rows are still listed on stderr, never dropped silently."""
    if not problems:
        return
    if not skip_bad:
        shown = "; ".join(str(p) for p in problems[:_SHOWN_PROBLEMS])
        more = f"; and {len(problems) - _SHOWN_PROBLEMS} more" if len(problems) > _SHOWN_PROBLEMS else ""
        raise CatalogError(f"{source}: {len(problems)} bad row(s): {shown}{more} (use --skip-bad to skip them)")
    for problem in problems:
        print(f"shadematch: skipping {source} {problem}", file=sys.stderr)
