"""A generated catalogue of look-alike lipsticks: one pack, one colour, products told apart only by the printed shade
code and name ("No. 169 Grège"), the case the MANet and two-stage-search papers are about. Queried with store-like
photos of the packs (`export.train.augment.store_like`: placement, perspective, a busy background, lighting,
blur, noise, JPEG), it shows what reading the label adds: the visual search cannot tell the packs apart, the words
on them can. Deterministic for a seed; the text is drawn with the synthetic-text renderer's DejaVu fonts.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .text_images import _font, find_fonts
from ..train.augment import StoreLikeConfig, store_like

BRAND = "ROUGE ÉCLAT"
LINE = "Satin lipstick"
#: Shade names of the generated products, each with a distinct three-digit code.
SHADES = ("Grège", "Rosewood", "Coral", "Mauve", "Cerise", "Nude", "Plum", "Ruby", "Sienna", "Blush", "Fuchsia",
          "Amber", "Orchid", "Scarlet", "Cocoa", "Peony")
#: The pack's colour (RGB), the same for every product.
PACK = (142, 38, 58)
#: Store-like photos: the pack fills a good part of the frame (a shopper holds it up to the kiosk's camera).
PHOTO_CONFIG = StoreLikeConfig(scale=(0.7, 1.0), rotation=4.0, perspective=0.05, shift=0.08, p_blur=0.3,
                               jpeg_quality=(70, 95))


@dataclass(frozen=True)
class ShadeCatalogue:
    catalog_csv: Path
    queries_csv: Path
    products: int


def shade_codes(products: int, seed: int) -> list[str]:
    """Distinct three-digit shade codes."""
    rng = np.random.default_rng([seed, 1])
    return [str(code) for code in rng.choice(np.arange(100, 1000), size=products, replace=False)]


def render_pack(code: str, name: str, size: int = 960) -> np.ndarray:
    """The catalogue image of one shade: the same pack for every product, only the code and name differ."""
    bold, regular = _fonts()
    image = Image.new("RGB", (size, size), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    left, right = size * 0.22, size * 0.78
    draw.rounded_rectangle((left, size * 0.06, right, size * 0.94), radius=size * 0.04, fill=PACK)
    draw.rectangle((left, size * 0.70, right, size * 0.94), fill=(30, 30, 34))  # the cap
    centre = size / 2

    def line(text: str, y: float, font_path: str, px: int) -> None:
        font = _font(font_path, px)
        width = draw.textlength(text, font=font)
        draw.text((centre - width / 2, y), text, font=font, fill=(250, 244, 236))

    line(BRAND, size * 0.12, bold, int(size * 0.058))
    line(LINE, size * 0.22, regular, int(size * 0.042))
    # The small print: legible in a camera's photo, a few pixels high at the visual model's 320 px.
    line(f"No. {code}", size * 0.40, bold, int(size * 0.025))
    line(name, size * 0.44, bold, int(size * 0.025))
    return np.asarray(image)


def _fonts() -> tuple[str, str]:
    fonts = {path.name: str(path) for path in find_fonts()}
    return fonts.get("DejaVuSans-Bold.ttf", min(fonts.values())), fonts.get("DejaVuSans.ttf", min(fonts.values()))


def make_shade_catalogue(out: Path, products: int = 12, photos_per_product: int = 2, seed: int = 0,
                         photo_size: int = 1280) -> ShadeCatalogue:
    """Write the catalogue images, ``photos_per_product`` store-like photos of each, catalog.csv
    (id,image,title,group) and queries.csv (image,group,subset) under ``out``."""
    if not 2 <= products <= len(SHADES):
        raise ValueError(f"need 2..{len(SHADES)} products, got {products}")
    out = Path(out)
    (out / "catalogue").mkdir(parents=True, exist_ok=True)
    (out / "photos").mkdir(parents=True, exist_ok=True)
    catalogue, queries = [], []
    for index, (code, name) in enumerate(zip(shade_codes(products, seed), SHADES)):
        product = f"shade-{code}"
        pack = render_pack(code, name)
        Image.fromarray(pack).save(out / "catalogue" / f"{product}.png")
        catalogue.append({"id": product, "image": f"catalogue/{product}.png", "group": product,
                          "title": f"{BRAND.title()} {LINE.lower()} No. {code} {name}"})
        for shot in range(photos_per_product):
            rng = np.random.default_rng([seed, index, shot])
            photo, _ = store_like(pack, None, rng, photo_size, config=PHOTO_CONFIG)
            path = out / "photos" / f"{product}_{shot}.jpg"
            Image.fromarray(photo).save(path, quality=92)
            queries.append({"image": f"photos/{path.name}", "group": product, "subset": "shades"})
    catalog_csv, queries_csv = out / "catalog.csv", out / "queries.csv"
    _write_csv(catalog_csv, ("id", "image", "title", "group"), catalogue)
    _write_csv(queries_csv, ("image", "group", "subset"), queries)
    return ShadeCatalogue(catalog_csv, queries_csv, products)


def _write_csv(path: Path, fields: tuple[str, ...], rows: list[dict[str, str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
