"""The unseen-products split of the Grocery Store classes: which fine classes no training stage may see.

The split is drawn once, seeded, stratified over the three top-level groups (a third of each group's classes,
rounded up: 11 of 31 Packages, 10 of 28 Fruit, 8 of 22 Vegetables = 29 of 81), and never tuned.
``split.json`` beside this file holds the result together with every class and its group, so the tests can
check the split, the training catalogue and the model card against each other without the dataset.

Usage: python benchmarks/new_products/split.py [--root DATASET] [--out split.json]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SPLIT = HERE / "split.json"
SEED = 20261205
TOP_GROUPS = ("Fruit", "Vegetables", "Packages")
HELD_OUT_SHARE = 1 / 3


def draw_held_out(groups: Mapping[str, str], seed: int = SEED, share: float = HELD_OUT_SHARE) -> list[str]:
    """Held-out class names: ceil(share * n) classes of each top-level group, drawn without replacement from the
    group's class names in sorted order by one generator seeded with ``seed`` (groups in ``TOP_GROUPS`` order)."""
    rng = np.random.default_rng(seed)
    held_out: list[str] = []
    for top in TOP_GROUPS:
        names = sorted(name for name, group in groups.items() if group == top)
        if not names:
            raise ValueError(f"no class of group {top}")
        picks = rng.choice(len(names), size=math.ceil(share * len(names)), replace=False)
        held_out.extend(sorted(names[i] for i in picks))
    return held_out


def make_split(groups: Mapping[str, str], seed: int = SEED) -> dict:
    """The split document: the rule, the seed, every class with its group, and the held-out names."""
    return {
        "rule": f"ceil({HELD_OUT_SHARE:.4f} x classes) of each top-level group {list(TOP_GROUPS)}, numpy "
                "default_rng(seed).choice over the group's sorted class names, groups in that order",
        "seed": seed,
        "classes": dict(sorted(groups.items())),
        "held_out": draw_held_out(groups, seed),
    }


def load_split(path: Path = SPLIT) -> dict:
    """Read and check a split document: held-out names are known classes, at least a third of each group."""
    split = json.loads(Path(path).read_text(encoding="utf-8"))
    classes, held_out = split["classes"], split["held_out"]
    unknown = sorted(set(held_out) - set(classes))
    if unknown:
        raise ValueError(f"{path}: held-out classes not in 'classes': {unknown}")
    if len(set(held_out)) != len(held_out):
        raise ValueError(f"{path}: a held-out class is listed twice")
    return split


def seen_classes(split: Mapping) -> list[str]:
    """The classes a model of this split may train on."""
    held_out = set(split["held_out"])
    return sorted(name for name in split["classes"] if name not in held_out)


def write_json_atomic(path: Path, document: Mapping) -> None:
    """Write JSON through a temporary file in the same folder and a rename."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(document, fh, indent=2)
            fh.write("\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: Sequence[str] | None = None) -> int:
    sys.path.insert(0, str(HERE))
    from protocol_csvs import DEFAULT_ROOT, load_classes

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help=f"the dataset/ folder (default: {DEFAULT_ROOT})")
    parser.add_argument("--out", type=Path, default=SPLIT, help=f"where to write the split (default: {SPLIT})")
    args = parser.parse_args(argv)
    try:
        classes = load_classes(args.root.resolve())
    except (OSError, ValueError) as exc:
        print(f"split: error: {exc}", file=sys.stderr)
        return 2
    split = make_split({c.name: c.top_group for c in classes.values()})
    write_json_atomic(args.out, split)
    print(f"{args.out}: {len(split['held_out'])} of {len(split['classes'])} classes held out")
    return 0


if __name__ == "__main__":
    sys.exit(main())
