"""1280-pixel query photos for the reading latency benchmark: the demo's store photos (348 px, scaled up, as a
kiosk camera's frame of the same scene would be) and the generated look-alike lipsticks (rendered at 1280 px).

Usage: python benchmarks/reading/make_photos.py OUT_DIR
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

from PIL import Image

from export.synthetic.shades import make_shade_catalogue

DEMO = Path(__file__).resolve().parents[2] / "export" / "demo"
SIDE = 1280


def main(out: Path) -> None:
    grocery = out / "grocery-1280"
    grocery.mkdir(parents=True, exist_ok=True)
    for photo in sorted((DEMO / "images").glob("*_query.jpg")):
        with Image.open(photo) as image:
            image.convert("RGB").resize((SIDE, SIDE), Image.Resampling.BICUBIC).save(grocery / photo.name, quality=92)
    shades = make_shade_catalogue(out / "shades", products=16, photos_per_product=2, seed=0, photo_size=SIDE)
    photos = out / "shades-1280"
    photos.mkdir(exist_ok=True)
    for photo in sorted((shades.queries_csv.parent / "photos").glob("*.jpg")):
        shutil.copyfile(photo, photos / photo.name)
    print(f"{grocery}, {photos}, catalogue {shades.catalog_csv}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
