"""CSVs of the unseen-products protocol: what the model may train on, and what it is scored on.

Writes:
- ``train_catalog.csv`` beside this file (shipped, so the model card's sha256 of it can be checked): every train
  photo and catalogue image of the classes ``split.json`` does not hold out, image paths relative to the file,
  title = the class name (training reads only the group);
- into ``--out``: ``instore_catalog.csv`` and ``iconic_catalog.csv`` of all 81 classes (the galleries: seen
  products stay in as distractors) and ``<split>_unseen_queries.csv`` / ``<split>_seen_queries.csv``: the photos
  of the held-out / other classes of ``--queries-split`` (val here; test where the held-out split is present).

Usage: python benchmarks/new_products/protocol_csvs.py --out OUT [--root DATASET] [--queries-split val]
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from split import SPLIT, load_split  # noqa: E402


def _grocery_prepare() -> ModuleType:
    """benchmarks/grocery/prepare.py under a name of its own (benchmarks/ holds scripts, not packages)."""
    spec = importlib.util.spec_from_file_location("grocery_prepare", HERE.parent / "grocery" / "prepare.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


grocery = _grocery_prepare()
CATALOG_HEADER, QUERIES_HEADER, DEFAULT_ROOT = grocery.CATALOG_HEADER, grocery.QUERIES_HEADER, grocery.DEFAULT_ROOT
load_classes, read_split, write_csv_atomic = grocery.load_classes, grocery.read_split, grocery.write_csv_atomic
iconic_id, photo_id = grocery.iconic_id, grocery.photo_id

TRAIN_CATALOG = HERE / "train_catalog.csv"


def training_rows(root: Path, held_out: set[str], csv_dir: Path) -> list[tuple[str, str, str, str]]:
    """Train photos + catalogue images of the seen classes, paths relative to ``csv_dir``."""
    classes = load_classes(root)
    seen = {i: c for i, c in classes.items() if c.name not in held_out}
    rel = lambda path: Path(os.path.relpath(path, csv_dir)).as_posix()  # noqa: E731
    photos = [p for p in read_split(root, "train", classes) if p.cls.name not in held_out]
    rows = [(photo_id("train", p.path), rel(p.path), p.cls.name.replace("-", " "), p.cls.name) for p in photos]
    rows += [(iconic_id(c), rel(c.iconic), c.name.replace("-", " "), c.name) for _, c in sorted(seen.items())]
    return rows


def query_rows(root: Path, split: str, held_out: set[str], unseen: bool) -> list[tuple[str, str, str]]:
    """Photos of ``split`` whose class is (``unseen``) or is not held out, as queries CSV rows."""
    classes = load_classes(root)
    return [(str(p.path), p.cls.name, p.cls.top_group) for p in read_split(root, split, classes)
            if (p.cls.name in held_out) == unseen]


def prepare_protocol(root: Path, out: Path, queries_split: str = "val", split_path: Path = SPLIT,
                     train_catalog: Path = TRAIN_CATALOG) -> dict[str, int]:
    """Write every CSV of the protocol; returns {path: rows}."""
    root = root.resolve()
    held_out = set(load_split(split_path)["held_out"])
    counts = {str(out / name): n for name, n in grocery.prepare(root, out).items() if name != "val_queries.csv"}
    counts[str(train_catalog)] = write_csv_atomic(train_catalog, CATALOG_HEADER,
                                                  training_rows(root, held_out, train_catalog.parent))
    for unseen, label in ((True, "unseen"), (False, "seen")):
        path = out / f"{queries_split}_{label}_queries.csv"
        counts[str(path)] = write_csv_atomic(path, QUERIES_HEADER, query_rows(root, queries_split, held_out, unseen))
    (out / "val_queries.csv").unlink(missing_ok=True)  # all val photos: not a query set of this protocol
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help=f"the dataset/ folder (default: {DEFAULT_ROOT})")
    parser.add_argument("--out", type=Path, required=True, help="folder for the galleries and query CSVs")
    parser.add_argument("--queries-split", default="val", help="the split whose photos are the queries (default: val)")
    args = parser.parse_args(argv)
    try:
        counts = prepare_protocol(args.root, args.out, args.queries_split)
    except (OSError, ValueError) as exc:
        print(f"prepare: error: {exc}", file=sys.stderr)
        return 2
    for path, n in counts.items():
        print(f"{path}: {n} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
