"""How a GTIN bundle answers the barcode benchmark's photos: the share answered by the barcode (stage "barcode",
the right product), wrong barcode answers (must be 0), and the share whose first match is the right product.

Usage: python benchmarks/barcode/rate.py BUNDLE WORK_DIR > rate.json
"""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

from runtime.retriever import Retriever


def main(bundle: Path, work: Path) -> None:
    report = {}
    with Retriever.open(bundle) as retriever:
        for name in ("barcode", "harsh", "bare"):
            queries = list(csv.DictReader(open(work / f"{name}_queries.csv", encoding="utf-8")))
            answers = retriever.answer([q["image"] for q in queries])
            firsts = [a.matches[0] for a in answers]
            report[name] = {
                "photos": len(queries),
                "by_barcode": sum(f.stage == "barcode" and f.group == q["group"] for f, q in zip(firsts, queries)),
                "wrong_barcode": sum(f.stage == "barcode" and f.group != q["group"] for f, q in zip(firsts, queries)),
                "first_right": sum(f.group == q["group"] for f, q in zip(firsts, queries)),
            }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
