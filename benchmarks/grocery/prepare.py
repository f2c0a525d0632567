"""Turn the Grocery Store dataset into shadematch catalogue and query CSVs.

Writes three files into ``--out``:

- ``instore_catalog.csv``: every train photo (with its class title) plus the 81 iconic images;
- ``iconic_catalog.csv``: the 81 iconic images only (the catalogue-only protocol);
- ``val_queries.csv``: the val photos, with their fine class as ``group`` and top-level group as ``subset``.

Catalogue CSVs have the header ``id,image,title,group``; the queries CSV ``image,group,subset``.
Image paths are absolute. See README.md beside this file for the protocols.

Usage: python benchmarks/grocery/prepare.py --out /tmp/grocery_csv
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_ROOT = REPO.parent / "shared" / "data" / "grocery-store" / "dataset"

CATALOG_HEADER = ("id", "image", "title", "group")
QUERIES_HEADER = ("image", "group", "subset")
TOP_GROUPS = ("Fruit", "Vegetables", "Packages")


@dataclass(frozen=True)
class GroceryClass:
    """One fine class of the dataset, as listed in classes.csv."""

    name: str
    class_id: int
    coarse: str
    coarse_id: int
    top_group: str
    iconic: Path
    description: Path


@dataclass(frozen=True)
class Photo:
    """One photo of a split (train or val)."""

    path: Path
    cls: GroceryClass


def product_title(name: str, description: str) -> str:
    """The catalogue title: fine class name with dashes as spaces, ". ", description with collapsed whitespace."""
    text = " ".join(description.split())
    label = name.replace("-", " ")
    return f"{label}. {text}" if text else label


def class_title(cls: GroceryClass) -> str:
    """Read the class's English description and build its title."""
    return product_title(cls.name, cls.description.read_text(encoding="utf-8-sig"))


def iconic_id(cls: GroceryClass) -> str:
    """Stable id of a class's iconic image, e.g. ``iconic-Arla-Standard-Milk``."""
    return f"iconic-{cls.name}"


def photo_id(split: str, path: Path) -> str:
    """Stable id of a photo, e.g. ``train-Arla-Standard-Milk_001``."""
    return f"{split}-{path.stem}"


def _dataset_path(root: Path, rel: str) -> Path:
    return root / rel.strip().lstrip("/")


def load_classes(root: Path) -> dict[int, GroceryClass]:
    """Read classes.csv into {fine class id: GroceryClass}, checking that the files exist."""
    classes: dict[int, GroceryClass] = {}
    with open(root / "classes.csv", newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        next(reader, None)  # header
        for lineno, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != 6:
                raise ValueError(f"classes.csv line {lineno}: expected 6 fields, got {len(row)}")
            name, cid, coarse, coarse_id, iconic_rel, desc_rel = (x.strip() for x in row)
            iconic = _dataset_path(root, iconic_rel)
            parts = Path(iconic_rel.lstrip("/")).parts
            top = parts[1] if len(parts) > 1 else ""
            if top not in TOP_GROUPS:
                raise ValueError(f"classes.csv line {lineno}: unknown top-level group {top!r}")
            cls = GroceryClass(name, int(cid), coarse, int(coarse_id), top, iconic, _dataset_path(root, desc_rel))
            for p in (cls.iconic, cls.description):
                if not p.is_file():
                    raise FileNotFoundError(f"classes.csv line {lineno}: missing {p}")
            if cls.class_id in classes:
                raise ValueError(f"classes.csv line {lineno}: duplicate class id {cls.class_id}")
            classes[cls.class_id] = cls
    return classes


def read_split(root: Path, split: str, classes: dict[int, GroceryClass]) -> list[Photo]:
    """Read ``<split>.txt`` (``path, fine_class_id, coarse_class_id``) into photos, checking ids and files."""
    photos: list[Photo] = []
    with open(root / f"{split}.txt", encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            fields = [x.strip() for x in line.split(",")]
            if len(fields) != 3:
                raise ValueError(f"{split}.txt line {lineno}: expected 3 fields, got {len(fields)}")
            rel, fine, coarse = fields
            cls = classes.get(int(fine))
            if cls is None or cls.coarse_id != int(coarse):
                raise ValueError(f"{split}.txt line {lineno}: class ids {fine}, {coarse} not in classes.csv")
            path = _dataset_path(root, rel)
            if path.parent.name != cls.name or Path(rel).parts[1] != cls.top_group:
                raise ValueError(f"{split}.txt line {lineno}: {rel} does not belong to class {cls.name}")
            if not path.is_file():
                raise FileNotFoundError(f"{split}.txt line {lineno}: missing {path}")
            photos.append(Photo(path, cls))
    return photos


def file_mode() -> int:
    """Permission bits for a new file under the current umask (mkstemp alone would give 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_csv_atomic(path: Path, header: Sequence[str], rows: Iterable[Sequence[str]]) -> int:
    """Write a CSV through a temp file in the same folder and os.replace; return the number of rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    count = 0
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(header)
            for row in rows:
                writer.writerow(row)
                count += 1
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return count


def iconic_rows(classes: dict[int, GroceryClass], titles: dict[int, str]) -> list[tuple[str, str, str, str]]:
    """Catalogue rows of the iconic images, in class-id order."""
    return [(iconic_id(c), str(c.iconic), titles[i], c.name) for i, c in sorted(classes.items())]


def photo_rows(split: str, photos: Sequence[Photo], titles: dict[int, str]) -> list[tuple[str, str, str, str]]:
    """Catalogue rows of photos (each with its class title)."""
    return [(photo_id(split, p.path), str(p.path), titles[p.cls.class_id], p.cls.name) for p in photos]


def prepare(root: Path, out: Path) -> dict[str, int]:
    """Write the three CSVs into ``out``; return {file name: row count}."""
    root = root.resolve()
    classes = load_classes(root)
    titles = {i: class_title(c) for i, c in classes.items()}
    train = read_split(root, "train", classes)
    val = read_split(root, "val", classes)

    iconic = iconic_rows(classes, titles)
    instore = photo_rows("train", train, titles) + iconic
    ids = [r[0] for r in instore]
    if len(set(ids)) != len(ids):
        raise ValueError("duplicate catalogue ids in the in-store catalogue")
    queries = [(str(p.path), p.cls.name, p.cls.top_group) for p in val]

    return {
        "instore_catalog.csv": write_csv_atomic(out / "instore_catalog.csv", CATALOG_HEADER, instore),
        "iconic_catalog.csv": write_csv_atomic(out / "iconic_catalog.csv", CATALOG_HEADER, iconic),
        "val_queries.csv": write_csv_atomic(out / "val_queries.csv", QUERIES_HEADER, queries),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT,
                        help=f"the dataset/ folder of the Grocery Store dataset (default: {DEFAULT_ROOT})")
    parser.add_argument("--out", type=Path, required=True, help="folder to write the CSVs into")
    args = parser.parse_args(argv)
    try:
        counts = prepare(args.root, args.out)
    except (OSError, ValueError) as exc:
        print(f"prepare: error: {exc}", file=sys.stderr)
        return 2
    for name, n in counts.items():
        print(f"{args.out / name}: {n} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
