"""INT8 variants of one model scored end to end on the unseen-products catalogue-only protocol (its most fragile
figure): each variant is quantised, then `shadematch build` (default settings, the variant as the model) and
`shadematch eval` of both val query sets, label reading on, as benchmarks/new_products/run.py does.

Usage: python benchmarks/int8/variants.py --model benchmarks/new_products/model.onnx --work /work/np/int8v
           --calibration benchmarks/new_products/train_catalog.csv --csv-dir /work/np/csv [--variants NAME ...]
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import onnx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from sensitivity import node_groups  # noqa: E402

from export.engine.precision import CPU_QDQ, calibration_images, int8_card, quantize_qdq  # noqa: E402
from export.onnx.trunk import write_model_files  # noqa: E402
from runtime.bundle import sha256_file  # noqa: E402
from runtime.describe.modelcard import ModelCard, card_path_for, quantized_path  # noqa: E402

#: name -> (calibration photos, group names kept in float32)
VARIANTS = {"64 photos (shipped recipe)": (64, ()), "128 photos": (128, ()), "tail + stem in float32": (64, ("tail", "stem")),
            "trunk 1-8 in float32": (64, ("trunk 1-8",))}


def shadematch(*args: str) -> str:
    return subprocess.run([sys.executable, "-m", "shadematch", *args], check=True, capture_output=True, text=True).stdout


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--calibration", type=Path, required=True)
    parser.add_argument("--csv-dir", type=Path, required=True)
    parser.add_argument("--variants", nargs="*", default=None)
    parser.add_argument("--report", type=Path, default=None)
    args = parser.parse_args()
    card = ModelCard.load(card_path_for(args.model))
    groups = node_groups(onnx.load(str(args.model)))
    rows = json.loads(args.report.read_text()) if args.report and args.report.is_file() else {}
    for name, (count, kept) in VARIANTS.items():
        if args.variants and not any(v in name for v in args.variants):
            continue
        folder = args.work / f"v{list(VARIANTS).index(name)}"
        folder.mkdir(parents=True, exist_ok=True)
        target = quantized_path(folder / args.model.name)
        exclude = [node for group in kept for node in groups[group]]
        quantize_qdq(args.model, target, card, calibration_images(args.calibration, count), "minmax",
                     form=CPU_QDQ, exclude=exclude)
        raw = int8_card(card, target.stem, sha256_file(target), {"images": count, "method": "minmax", "float32": list(kept)})
        write_model_files(folder, target.stem, target.read_bytes(), raw, f"# {target.stem}\n")
        bundle = folder / "bundle"
        shadematch("build", "--catalog", str(args.csv_dir / "iconic_catalog.csv"), "--out", str(bundle), "--model",
                   str(target), "--force", "--quiet", "--no-pictures", "--workers", "2")
        row = {}
        for queries in ("unseen", "seen"):
            report = json.loads(shadematch("eval", "--bundle", str(bundle), "--json", "--queries",
                                           str(args.csv_dir / f"val_{queries}_queries.csv")))
            packages = report["subsets"]["Packages"]
            row[f"catalogue_only/{queries}"] = {"map7": round(report["map7"], 3), "top1": round(report["top1"], 3),
                                                "packages_top1": round(packages["top1"], 3)}
        rows[name] = row
        print(name, json.dumps(row), flush=True)
        shutil.rmtree(bundle)
        if args.report:
            args.report.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
