"""The barcode tests' photos and catalogue: each demo product's package with its own EAN-13 printed on it,
photographed store-like (export.synthetic.barcodes), and the demo catalogue with those GTINs."""
from __future__ import annotations

import csv
import functools
from pathlib import Path

import numpy as np
from PIL import Image

from export.synthetic.barcodes import Shot, barcode_photo, ean13

from .conftest import DEMO

PACKAGES = sorted((DEMO / "images").glob("*_train.jpg"))
#: An EAN-13 per demo product, then more that no catalogue holds (check digits computed, not typed).
GTINS = [ean13(400638133390 + 7 * n) for n in range(len(PACKAGES) + 8)]
PHOTOS = 20
#: How many of them the fast tests make (a photo takes ~0.1 s); the slow bundle test answers all 20.
FEW = 6


@functools.lru_cache(maxsize=None)
def photos(count: int = PHOTOS, barcode: bool = True, seed: int = 0, shot: Shot = Shot()) -> tuple[Image.Image, ...]:
    """The store-like photos: photo n shows package n % 12 with that product's GTIN (``barcode`` False: the same
    scenes bare); the first ``count`` of the 20, the same whatever the count. Callers must not change them."""
    rng = np.random.default_rng(seed)
    return tuple(barcode_photo(Image.open(PACKAGES[n % len(PACKAGES)]), GTINS[n % len(PACKAGES)], rng,
                               barcode=barcode, shot=shot) for n in range(count))


def group_of(package: Path) -> str:
    """The demo product a package picture shows."""
    rows = csv.DictReader(open(DEMO / "catalog.csv", encoding="utf-8"))
    return next(row["group"] for row in rows if row["image"] == f"images/{package.name}")


def write_gtin_catalogue(path: Path) -> Path:
    """The demo catalogue CSV with a ``gtin`` column: package n's product has GTINS[n]."""
    gtin_of = {group_of(package): GTINS[n] for n, package in enumerate(PACKAGES)}
    rows = list(csv.DictReader(open(DEMO / "catalog.csv", encoding="utf-8")))
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["id", "image", "title", "group", "gtin"])
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "image": str(DEMO / row["image"]), "gtin": gtin_of[row["group"]]})
    return path
