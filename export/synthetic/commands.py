"""`shadematch synth-catalog` and `text-data`: the seeded generators.

Only argparse at import time (see export.cli); each handler imports what it drives when it runs."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from runtime.cli_groups import CATALOGUE, MODELS, add_command
from runtime.cli_types import int_at_least, non_negative_int, positive_int

from ..extra import needs_export_extra


def register_synth_catalog(commands: argparse._SubParsersAction) -> None:
    p = add_command(commands, "synth-catalog", group=CATALOGUE, summary="write a synthetic catalogue at scale (vectors + titles)", description="Write a seeded synthetic catalogue: vectors.npy (product-family clusters), titles.csv (id,title,group from a product-title grammar), synth.json.")
    p.add_argument("--items", required=True, type=positive_int, help="catalogue rows")
    p.add_argument("--dim", type=int_at_least(2), default=1280, help="descriptor dimension (default: 1280, the shipped model's)")
    p.add_argument("--out", required=True, type=Path, help="directory to write")
    p.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default: 0)")
    p.set_defaults(handler=_synth_catalog)


def _synth_catalog(args: argparse.Namespace) -> int:
    from .catalogs import SynthParams, write_synthetic_catalog

    out = write_synthetic_catalog(args.out, SynthParams(items=args.items, dim=args.dim, seed=args.seed))
    print(f"wrote {args.items} synthetic items ({args.dim}-d) to {out}")
    return 0


def register_text_data(commands: argparse._SubParsersAction) -> None:
    p = add_command(commands, "text-data", group=MODELS, summary="render synthetic text images to train the EAST detector",
                            description="Render seeded synthetic product-like images with exact text quadrilaterals "
                                        "(NNNNNN.jpg + labels.jsonl, DEVELOPERS.md 'Text detector (EAST)').")
    p.add_argument("--out", required=True, type=Path, help="sample directory to write (replaced if it holds a previous set)")
    p.add_argument("--count", required=True, type=positive_int, help="number of images")
    p.add_argument("--seed", required=True, type=non_negative_int, help="seed: the same seed gives byte-identical files")
    p.add_argument("--size", type=positive_int, default=320, help="image height and width in pixels (default: 320)")
    p.add_argument("--photos", type=Path, default=None, help="folder of real photos whose blurred crops serve as backgrounds (default: drawn backgrounds only)")
    p.add_argument("--workers", type=positive_int, default=1, help="worker processes (default: 1); the output does not depend on it")
    p.set_defaults(handler=_text_data)


def _text_data(args: argparse.Namespace) -> int:
    import time

    try:
        from .text_images import generate
    except ImportError as exc:
        raise needs_export_extra(exc) from None
    start = time.perf_counter()
    out = generate(args.out, args.count, args.seed, size=args.size, photo_dir=args.photos, workers=args.workers)
    seconds = time.perf_counter() - start
    print(f"wrote {out}: {args.count} images in {seconds:.1f} s ({args.count / max(seconds, 1e-9):.1f} images/s)")
    return 0

