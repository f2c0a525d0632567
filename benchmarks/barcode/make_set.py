"""The barcode benchmark's inputs: the demo catalogue with a GTIN per product, 20 kiosk-frame (1280x960) photos of
its packages with the product's EAN-13 printed on them, the same 20 scenes without the barcode, and the same at
the HARSH shot (softer, more oblique) for the reading rate.

Usage: python benchmarks/barcode/make_set.py OUT_DIR
"""
from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from export.synthetic.barcodes import HARSH, Shot, barcode_photo, ean13

DEMO = Path(__file__).resolve().parents[2] / "export" / "demo"
PHOTOS = 20


def main(out: Path) -> None:
    rows = list(csv.DictReader(open(DEMO / "catalog.csv", encoding="utf-8")))
    packages = sorted((DEMO / "images").glob("*_train.jpg"))
    group_of = {p: next(r["group"] for r in rows if r["image"] == f"images/{p.name}") for p in packages}
    gtin_of = {group_of[p]: ean13(400638133390 + 7 * n) for n, p in enumerate(packages)}
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "catalog.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["id", "image", "title", "group", "gtin"])
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "image": str(DEMO / row["image"]), "gtin": gtin_of[row["group"]]})
    for name, barcode, shot in (("barcode", True, Shot()), ("bare", False, Shot()), ("harsh", True, HARSH)):
        folder = out / name
        folder.mkdir(exist_ok=True)
        rng = np.random.default_rng(0)
        with open(out / f"{name}_queries.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["image", "group", "gtin"])
            for n in range(PHOTOS):
                package = packages[n % len(packages)]
                photo = barcode_photo(Image.open(package), gtin_of[group_of[package]], rng, barcode=barcode, shot=shot)
                path = folder / f"{n:02d}_{group_of[package]}.jpg"
                photo.save(path, quality=92)
                writer.writerow([str(path), group_of[package], gtin_of[group_of[package]]])


if __name__ == "__main__":
    main(Path(sys.argv[1]))
