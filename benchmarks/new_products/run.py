"""The unseen-products protocol end to end: train without the held-out classes, export, build, evaluate.

Stages, each resumable (a finished stage is kept and skipped on rerun):
1. CSVs (protocol_csvs.py): the training catalogue of the seen classes, the two galleries of all classes, and the
   query photos of the held-out (unseen) and the other (seen) classes.
2. ``shadematch train`` with ``RECIPE`` on the training catalogue (its own checkpoints resume it).
3. Export to ``<model-dir>/model.onnx`` with a card that lists the classes the model saw, the held-out ones and the
   sha256 of the training catalogue.
4. ``shadematch build`` (default settings unless ``--build-arg`` says otherwise) of both galleries and
   ``shadematch eval`` of both query sets on each: results/<label>.json holds every figure.

``--model M`` skips 2-3 and scores an existing model (the shipped default, an ImageNet trunk) on the same protocol.
Why the text branch is off in ``RECIPE``: the shipped EAST was trained on teacher boxes of every class's photos,
so a MANet that carried it would have seen the held-out products; T := 1 keeps the model honest.

Usage:
  python benchmarks/new_products/run.py --work WORK [--label unseen] [--steps 2000]
  python benchmarks/new_products/run.py --work WORK --model engines/manet_lite0.onnx --label shipped_default
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from protocol_csvs import DEFAULT_ROOT, TRAIN_CATALOG, prepare_protocol  # noqa: E402
from split import SPLIT, load_split, seen_classes, write_json_atomic  # noqa: E402

RESULTS = HERE / "results"
PROTOCOLS = {"instore": "instore_catalog.csv", "catalogue_only": "iconic_catalog.csv"}
QUERY_SETS = ("unseen", "seen")
#: The shipped model's recipe (engines/manet_lite0.md) in one stage from the ImageNet backbone, text branch off.
RECIPE = {"fresh-views": True, "train-from-block": 11, "pool": "srmac", "head": "cosine", "label-smoothing": 0.1,
          "no-text": True, "steps": 1400}


def shadematch(*args: str) -> str:
    """Run a shadematch command; its stdout, or SystemExit with its own error line."""
    done = subprocess.run([sys.executable, "-m", "shadematch", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"run: shadematch {args[0]} failed: {done.stderr.strip().splitlines()[-1:]}")
    return done.stdout


def recipe_args(recipe: dict) -> list[str]:
    """``RECIPE`` as command-line options of ``shadematch train``."""
    args: list[str] = []
    for key, value in recipe.items():
        if value is True:
            args.append(f"--{key}")
        elif value is not False:
            args += [f"--{key}", str(value)]
    return args


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def train_and_export(run: Path, model_dir: Path, train_catalog: Path, split_path: Path, recipe: dict,
                     size: int) -> Path:
    """Train (resuming) and export ``model.onnx`` + card; a model already exported from this run is kept."""
    from export.onnx.manet import export_manet_model

    model = model_dir / "model.onnx"
    if model.is_file():
        return model
    if not _finished(run / "checkpoint.pt", int(recipe["steps"])):
        shadematch("train", "--catalog", str(train_catalog), "--out", str(run), *recipe_args(recipe))
    split = load_split(split_path)
    seen = seen_classes(split)
    catalogue_sha = sha256(train_catalog)
    training_data = (f"Grocery Store dataset (Klasson et al., WACV 2019, MIT): the train photos and catalogue images of "
                     f"{len(seen)} of its {len(split['classes'])} classes ({train_catalog.name}, sha256 {catalogue_sha}); "
                     f"none of the {len(split['held_out'])} classes held out by {split_path.name} (seed {split['seed']}), "
                     "in any stage: ImageNet backbone, no EAST (text branch off), pseudo-saliency from the ImageNet trunk")
    path = export_manet_model(run / "checkpoint.pt", model_dir, size=size, name="model", training_data=training_data,
                              card_extra={"rebuild": "python benchmarks/new_products/run.py --work WORK "
                                                     f"(shadematch train {' '.join(recipe_args(recipe))}; "
                                                     f"{train_catalog.name} from protocol_csvs.py)",
                                          "classes_seen": seen, "classes_held_out": sorted(split["held_out"]),
                                          "training_catalog": {"file": train_catalog.name, "sha256": catalogue_sha}})
    return path


def _finished(checkpoint: Path, steps: int) -> bool:
    """Whether a run already took all its steps (a resumed `train` would decode every image first to find out)."""
    from export.train.checkpoint import load_checkpoint

    return checkpoint.is_file() and load_checkpoint(checkpoint)["step"] >= steps


def evaluate(model: Path, csv_dir: Path, work: Path, label: str, queries_split: str,
             build_args: Sequence[str], eval_args: Sequence[str] = ()) -> dict:
    """Build both galleries with ``model`` and evaluate both query sets on each: {protocol: {query set: report}}."""
    results: dict = {}
    for protocol, catalog in PROTOCOLS.items():
        bundle = work / "bundles" / f"{label}-{protocol}"
        started = time.perf_counter()
        if not (bundle / "manifest.json").is_file():
            shadematch("build", "--catalog", str(csv_dir / catalog), "--out", str(bundle), "--model", str(model),
                       "--force", "--quiet", "--no-pictures", "--workers", "2", *build_args)
        build_seconds = round(time.perf_counter() - started, 1)
        results[protocol] = {"build_seconds": build_seconds}
        for queries in QUERY_SETS:
            report = json.loads(shadematch("eval", "--bundle", str(bundle), "--json", *eval_args, "--queries",
                                           str(csv_dir / f"{queries_split}_{queries}_queries.csv")))
            results[protocol][queries] = report
    return results


def headline(results: dict) -> dict:
    """The figures the issue asks for, per protocol and query set: mAP@7 and top-1 (image level), with Packages."""
    out = {}
    for protocol, by_set in results.items():
        for queries in QUERY_SETS:
            r = by_set[queries]
            packages = r.get("subsets", {}).get("Packages", {})
            out[f"{protocol}/{queries}"] = {"queries": r["queries"], "map7": round(r["map7"], 3),
                                            "top1": round(r["top1"], 3),
                                            "packages_map7": round(packages["map7"], 3) if packages else None,
                                            "packages_top1": round(packages["top1"], 3) if packages else None}
    return out


def card_metrics(report: dict, split_path: Path) -> dict:
    """The headline as the model card's metrics table, each figure named by whether its products were seen."""
    metrics: dict = {"protocol": f"benchmarks/new_products ({split_path.name}), Grocery Store "
                                 f"{report['queries_split']} photos, mAP@7 (Perfect-500K) and top-1, default build"}
    for row, figures in report["headline"].items():
        protocol, queries = row.split("/")
        name = f"{protocol}_{queries}_products"
        metrics[f"{name}_map7"] = figures["map7"]
        metrics[f"{name}_top1"] = figures["top1"]
    return metrics


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="work folder: CSVs, training run, bundles")
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help=f"the dataset/ folder (default: {DEFAULT_ROOT})")
    parser.add_argument("--split", type=Path, default=SPLIT, help=f"the split (default: {SPLIT})")
    parser.add_argument("--train-catalog", type=Path, default=TRAIN_CATALOG,
                        help=f"where the training catalogue is written (default: {TRAIN_CATALOG})")
    parser.add_argument("--queries-split", default="val", help="the dataset split whose photos query (default: val)")
    parser.add_argument("--label", default="unseen", help="name of this row's results (default: unseen)")
    parser.add_argument("--model", type=Path, default=None, help="score this model instead of training one")
    parser.add_argument("--model-dir", type=Path, default=HERE, help=f"where the trained model.onnx goes (default: {HERE})")
    parser.add_argument("--steps", type=int, default=RECIPE["steps"], help="training steps (default: %(default)s)")
    parser.add_argument("--size", type=int, default=320, help="exported input size (default: 320)")
    parser.add_argument("--train-arg", action="append", default=[], help="extra `shadematch train` option (repeatable)")
    parser.add_argument("--build-arg", action="append", default=[], help="extra `shadematch build` option (repeatable)")
    parser.add_argument("--eval-arg", action="append", default=[], help="extra `shadematch eval` option (repeatable)")
    parser.add_argument("--results", type=Path, default=RESULTS, help=f"results folder (default: {RESULTS})")
    args = parser.parse_args(argv)

    csv_dir = args.work / "csv"
    prepare_protocol(args.root, csv_dir, args.queries_split, args.split, args.train_catalog)
    if args.model is None:
        recipe = {**RECIPE, "steps": args.steps}
        model = train_and_export(args.work / f"run-{args.label}", args.model_dir, args.train_catalog, args.split,
                                 recipe | _extra(args.train_arg), args.size)
    else:
        model = args.model
    results = evaluate(model, csv_dir, args.work, args.label, args.queries_split, args.build_arg, args.eval_arg)
    report = {"label": args.label, "model": str(model), "model_sha256": sha256(model),
              "queries_split": args.queries_split, "build_args": args.build_arg,
              "eval_args": args.eval_arg, "headline": headline(results),
              "reports": results}
    args.results.mkdir(parents=True, exist_ok=True)
    out = args.results / f"{args.label}_{args.queries_split}.json"
    write_json_atomic(out, report)
    if args.model is None:
        from export.onnx.manet import record_metrics

        record_metrics(model, card_metrics(report, args.split))
    for row, figures in report["headline"].items():
        print(f"{args.label} {row}: " + ", ".join(f"{k} {v}" for k, v in figures.items()))
    print(f"wrote {out}")
    return 0


def _extra(train_args: Sequence[str]) -> dict:
    """``--train-arg=--key=value`` / ``--train-arg=--flag`` as recipe entries (they override ``RECIPE``)."""
    extra: dict = {}
    for item in train_args:
        key, _, value = item.lstrip("-").partition("=")
        extra[key] = value if value else True
    return extra


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    sys.exit(main())
