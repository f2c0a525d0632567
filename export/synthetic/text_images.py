"""Seeded synthetic text images for training the EAST detector without hand labels.

Each image is a product-like background (packaging colours with gradients, lipstick-tube cylinders, panels of
several colours, smooth noise textures, or optionally blurred crops of real photos) with a few distractor
shapes, and several text instances on it: dictionary-ish packaging words, made-up brand names, shade and size
codes ("No. 169", "SPF 50", "4.5 g", "Mjölk 3%"), in the DejaVu fonts, at varied sizes, colours, rotations and
mild perspective, sometimes stacked in blocks of lines. Photometric noise (lighting, blur, resolution loss,
brightness, sensor noise, JPEG) comes last.

Exact quadrilaterals: every line is rendered alone with Pillow into an 8-bit coverage mask in its own upright
frame; its box is the bounding box of the mask's non-zero pixels in continuous coordinates (pixel (r, c) covers
[c, c + 1] x [r, r + 1]), so it bounds every rendered glyph pixel and touches the ink on all four sides. The
lines of a block are pasted into one canvas at integer offsets (the boxes move with them), and one homography H
(centre, horizontal scale, rotation, perspective, placement) maps the canvas into the image: the pixels through
`cv2.warpPerspective` (with H conjugated by the half-pixel shift of OpenCV's pixel-centre convention) and the
box corners through H itself. The quads are therefore in the same continuous image coordinates: the image spans
[0, W] x [0, H] and pixel (x, y) has its centre at (x + 0.5, y + 0.5); the EAST cell (i, j) of DEVELOPERS.md
stands for (4 j + 2, 4 i + 2), the centre of its 4 x 4 block in these coordinates. Bilinear resampling can put
faint ink at most ~0.5 px (times the local scale) outside a quad.

Reproducible: image `index` depends only on (seed, index, size, the font files, the photo list), through
``numpy.random.default_rng([seed, index])``, so any number of workers writes byte-identical files.
"""
from __future__ import annotations

import colorsys
import json
import math
import os
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from runtime.errors import ShadematchError

#: Where the Debian packages fonts-dejavu-core / fonts-dejavu-extra put the DejaVu TrueType fonts.
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
FONT_PACKAGES = "fonts-dejavu-core fonts-dejavu-extra"
FONT_SUFFIXES = (".ttf", ".otf")
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
#: Instances whose quad is lower than this (pixels, shorter of the two side edges) are marked ignore.
MIN_TEXT_HEIGHT = 8.0
LABELS = "labels.jsonl"

# --------------------------------------------------------------------------------------------------- texts
_WORDS = """
matte satin velvet lipstick rouge gloss balm serum cream creme lotion foundation concealer mascara eyeliner
powder blush bronzer highlighter primer tinted hydrating nourishing longwear waterproof radiant natural nude
coral ruby berry cherry rose blossom crimson scarlet mauve plum sienna beige ivory sand honey mocha cocoa
caramel amber pearl gold silver noir black blanc violet lilac peach apricot vanilla organic vegan original
classic light extra fresh pure milk yoghurt yogurt juice orange apple mango banana blueberry strawberry
raspberry oat soy coconut almond protein cereal granola butter cheese tomato pasta sauce coffee tea water
mineral sparkling lactose free whole skimmed mjölk fil havre apelsin äpple smör ost grädde lätt ekologisk
mellanmjölk standardmjölk fruktsoppa blåbär jordgubb päron lait crème beurre fraise framboise pêche pomme
citron bio léger entier demi écrémé eau parfum toilette Milch Sahne Joghurt natur leicht frisch limited
edition refill ultra intense sheer shine lasting velours teint poudre lèvres yeux ongles vernis
""".split()
_SYLLABLES = """
ka lo mi ra ve no sa ti lu be ro xa de fi gu ny or el an is zo che ma vi sol tru bel dor mar lin vel cor nia
ette elle ique ora ana sen tal mo ri qui lé ré bö å ver lux ami fla ne ko sta
""".split()
_BRAND_SUFFIX = [" Paris", " Cosmetics", " & Co", " Beauty", " Lab", " AB", " Mejeri", " Organics", " London"]
_UNITS_MASS = ["1.5", "2", "3", "3.5", "4", "4.5", "10", "30", "50", "100", "125", "150", "200", "250", "400", "500"]
_UNITS_VOL = ["5", "7.5", "10", "15", "30", "50", "75", "100", "150", "200", "250", "330", "500", "750"]


def _brand(rng) -> str:
    name = "".join(_SYLLABLES[k] for k in rng.integers(0, len(_SYLLABLES), int(rng.integers(2, 4))))
    name = name.upper() if rng.random() < 0.45 else name.capitalize()
    if rng.random() < 0.15:
        name += _BRAND_SUFFIX[int(rng.integers(len(_BRAND_SUFFIX)))]
    return name


def _decimal(value: str, rng) -> str:
    return value.replace(".", ",") if rng.random() < 0.4 else value


def _code(rng) -> str:
    """Shade, size and other codes printed on packaging."""
    n = int(rng.integers(1, 1000))
    kind = int(rng.integers(0, 16))
    if kind == 0:
        return f"No. {n}"
    if kind == 1:
        return f"SPF {[10, 15, 20, 25, 30, 50][int(rng.integers(6))]}" + ("+" if rng.random() < 0.3 else "")
    if kind == 2:
        return f"{_decimal(_UNITS_MASS[int(rng.integers(len(_UNITS_MASS)))], rng)} g"
    if kind == 3:
        return f"{_decimal(_UNITS_VOL[int(rng.integers(len(_UNITS_VOL)))], rng)} ml"
    if kind == 4:
        return ["1 l", "1,5 l", "0,5 l", "2 l", "1 L", "1.5 L", "33 cl", "25 cl"][int(rng.integers(8))]
    if kind == 5:
        return f"{['Rouge', 'Teinte', 'Shade', 'Nuance', 'Color'][int(rng.integers(5))]} {n if rng.random() < 0.5 else f'{n % 100:02d}'}"
    if kind == 6:
        fat = ["0,5", "1,5", "3", "3,8", "0.1", "10", "2"][int(rng.integers(7))]
        word = ["Mjölk", "Fil", "Yoghurt", "Grädde", "fett", "Fat"][int(rng.integers(6))]
        return f"{word} {fat}%" if rng.random() < 0.7 else f"{fat}% {word.lower()}"
    if kind == 7:
        return f"#{n}"
    if kind == 8:
        return f"N°{n % 30}"
    if kind == 9:
        return f"{n % 100},{int(rng.integers(0, 100)):02d} kr" if rng.random() < 0.6 else f"€ {n % 60},{int(rng.integers(0, 100)):02d}"
    if kind == 10:
        return "".join(str(d) for d in rng.integers(0, 10, int(rng.choice([8, 13]))))
    if kind == 11:
        return f"Lot {chr(65 + int(rng.integers(26)))}{int(rng.integers(100, 9999))}"
    if kind == 12:
        return f"EXP {int(rng.integers(1, 13)):02d}/{int(rng.integers(2025, 2031))}"
    if kind == 13:
        return f"{n}" if rng.random() < 0.5 else f"{n % 100:02d}"
    if kind == 14:
        return f"{int(rng.integers(1, 30))} x {_UNITS_VOL[int(rng.integers(len(_UNITS_VOL)))]} ml"
    return f"{['Eau de Parfum', 'Eau de Toilette', 'Extrait'][int(rng.integers(3))]} {_UNITS_VOL[int(rng.integers(len(_UNITS_VOL)))]} ml"


def _word(rng) -> str:
    word = _WORDS[int(rng.integers(len(_WORDS)))]
    r = rng.random()
    return word.upper() if r < 0.3 else (word.capitalize() if r < 0.65 else word)


def random_text(rng) -> str:
    """One text instance: a word, a brand, a code or a short phrase."""
    r = rng.random()
    if r < 0.34:
        return _word(rng)
    if r < 0.54:
        return _brand(rng)
    if r < 0.88:
        return _code(rng)
    return " ".join(_word(rng) for _ in range(int(rng.integers(2, 4))))


# --------------------------------------------------------------------------------------------------- fonts
def find_fonts(font_dir: Path = FONT_DIR) -> list[Path]:
    """Every TrueType / OpenType font file directly in ``font_dir``, sorted by name."""
    font_dir = Path(font_dir)
    fonts = sorted(p for p in font_dir.glob("*") if p.suffix.lower() in FONT_SUFFIXES and p.is_file()) if font_dir.is_dir() else []
    if not fonts:
        raise ShadematchError(
            f"no TrueType fonts in {font_dir}: the synthetic text renderer needs the DejaVu fonts "
            f"(Debian packages {FONT_PACKAGES}: apt-get install {FONT_PACKAGES})"
        )
    return fonts


@lru_cache(maxsize=1024)
def _font(path: str, px: int):

    return ImageFont.truetype(path, px)


def find_photos(photo_dir: Path) -> list[Path]:
    """Image files under ``photo_dir`` (recursively), sorted by relative path so every run sees one order."""
    photo_dir = Path(photo_dir)
    if not photo_dir.is_dir():
        raise ShadematchError(f"{photo_dir}: no such photo directory")
    photos = sorted((p for p in photo_dir.rglob("*") if p.suffix.lower() in PHOTO_SUFFIXES and p.is_file()),
                    key=lambda p: p.relative_to(photo_dir).as_posix())
    if not photos:
        raise ShadematchError(f"{photo_dir}: no photos ({', '.join(PHOTO_SUFFIXES)}) in it")
    return photos


# --------------------------------------------------------------------------------------------------- colours
def _luma(c) -> float:
    return float(0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2])


def _hsv(h: float, s: float, v: float):

    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v), dtype=np.float32)


def _packaging_colour(rng):
    """A colour as printed on packaging: neutrals, pastels, deep and saturated colours, metallics."""

    r = rng.random()
    if r < 0.22:
        v = [rng.uniform(0.85, 1.0), rng.uniform(0.0, 0.15), rng.uniform(0.3, 0.75)][int(rng.integers(3))]
        return np.clip(v + rng.normal(0, 0.025, 3), 0, 1).astype(np.float32)
    if r < 0.32:  # gold, silver, rose gold
        base = [(0.83, 0.69, 0.22), (0.75, 0.75, 0.78), (0.72, 0.45, 0.42)][int(rng.integers(3))]
        return np.clip(np.array(base) * rng.uniform(0.7, 1.15), 0, 1).astype(np.float32)
    if r < 0.55:  # pastel
        return _hsv(rng.random(), rng.uniform(0.1, 0.4), rng.uniform(0.8, 1.0))
    return _hsv(rng.random(), rng.uniform(0.4, 1.0), rng.uniform(0.2, 1.0))


def _with_luma(colour, target: float):
    """Blend ``colour`` with black or white so that its luma is ``target``."""

    y = _luma(colour)
    if abs(target - y) < 1e-6:
        return colour
    anchor, ya = (np.ones(3, np.float32), 1.0) if target > y else (np.zeros(3, np.float32), 0.0)
    t = min(max((target - y) / (ya - y), 0.0), 1.0)
    return (colour * (1 - t) + anchor * t).astype(np.float32)


def _text_colour(rng, bg_luma: float, low_contrast: bool):
    """A text colour whose luma differs from the background's by >= 0.35 (0.12-0.22 when ``low_contrast``)."""
    delta = rng.uniform(0.12, 0.22) if low_contrast else rng.uniform(0.35, 0.9)
    up = bg_luma + delta <= 1.0 and (bg_luma - delta < 0.0 or rng.random() < (1.0 - bg_luma))
    target = bg_luma + delta if up else bg_luma - delta
    target = min(max(target, 0.0), 1.0)
    return _with_luma(_packaging_colour(rng), target)


# --------------------------------------------------------------------------------------------------- backgrounds
@lru_cache(maxsize=4)
def _grid(size: int):
    """Pixel-centre coordinates in [0, 1]: (X, Y), each (size, size) float32 (shared: never modify)."""

    x = (np.arange(size, dtype=np.float32) + 0.5) / size
    return np.meshgrid(x, x)


def _bg_gradient(rng, size: int):
    """Two packaging colours blended along a direction or radially (computed on a 32 x 32 grid, then resized)."""

    X, Y = _grid(32)
    c1 = _packaging_colour(rng)
    c2 = _packaging_colour(rng) if rng.random() < 0.35 else np.clip(c1 * rng.uniform(0.6, 1.25), 0, 1)
    if rng.random() < 0.2:
        cx, cy = rng.uniform(0.2, 0.8, 2)
        t = np.sqrt((X - cx) ** 2 + (Y - cy) ** 2) / rng.uniform(0.5, 1.0)
    else:
        a = rng.uniform(0, 2 * math.pi)
        ca, sa = math.cos(a), math.sin(a)
        t = ((X - 0.5) * ca + (Y - 0.5) * sa) / (abs(ca) + abs(sa)) + 0.5
    t = np.clip(t, 0, 1)[..., None]
    return cv2.resize(c1 + t * (c2 - c1), (size, size), interpolation=cv2.INTER_LINEAR)


def _bg_cylinders(rng, size: int):
    """Lipstick tubes / bottles: shaded cylinders, sometimes with a metallic cap band, on a gradient."""

    full, size = size, max(32, size // 2)  # shaded at half resolution, then resized (soft, anti-aliased edges)
    X, Y = _grid(size)
    img = _bg_gradient(rng, size)
    n = 1 if rng.random() < 0.6 else int(rng.integers(2, 4))
    tilt = rng.normal(0, 0.12) if rng.random() < 0.7 else math.pi / 2 + rng.normal(0, 0.12)
    ca, sa = math.cos(tilt), math.sin(tilt)  # axis direction (x, y) = (sin, cos) for tilt 0 = vertical
    centres = np.sort(rng.uniform(0.15, 0.85, n))
    for k in range(n):
        half = rng.uniform(0.12, 0.45) / n ** 0.5
        s = ((X - centres[k]) * ca - (Y - 0.5) * sa) / half  # across the axis, -1..1 on the tube
        t = (X - 0.5) * sa + (Y - 0.5) * ca  # along the axis
        inside = np.clip((1 - np.abs(s)) * half * size, 0, 1)[..., None]
        col = _packaging_colour(rng)
        s0, sw = rng.uniform(-0.6, 0.6), rng.uniform(0.08, 0.3)
        shade = (rng.uniform(0.25, 0.5) + rng.uniform(0.4, 0.7) * np.sqrt(np.clip(1 - s * s, 0, 1)))[..., None]
        spec = (rng.uniform(0.1, 0.6) * np.exp(-((s - s0) / sw) ** 2))[..., None]
        tube = col * shade + spec
        if rng.random() < 0.5:  # cap / metallic band along part of the axis
            t0 = rng.uniform(-0.5, 0.3)
            length = rng.uniform(0.1, 0.5)
            band = np.clip(np.minimum(t - t0, t0 + length - t) * size, 0, 1)[..., None]  # anti-aliased edges
            metal = _packaging_colour(rng)
            tube = tube + band * (metal * shade + 1.5 * spec - tube)
        img = img * (1 - inside) + tube * inside
    return cv2.resize(img, (full, full), interpolation=cv2.INTER_LINEAR)


def _bg_panels(rng, size: int):
    """Boxes / cartons: rectangles, bands, circles of a few colours."""

    palette = [_packaging_colour(rng) for _ in range(int(rng.integers(2, 5)))]
    img = np.empty((size, size, 3), np.float32)
    img[:] = palette[0]
    for _ in range(int(rng.integers(2, 7))):
        col = tuple(float(v) for v in palette[int(rng.integers(len(palette)))])
        kind = rng.random()
        if kind < 0.45:
            x0, y0 = rng.uniform(-0.2, 0.9, 2) * size
            w, h = rng.uniform(0.15, 0.9, 2) * size
            pts = np.array([[x0, y0], [x0 + w, y0], [x0 + w, y0 + h], [x0, y0 + h]])
        elif kind < 0.8:  # a band across the image, often slanted
            a = rng.normal(0, 0.3) + (math.pi / 2 if rng.random() < 0.3 else 0.0)
            c = rng.uniform(0, size, 2)
            u = np.array([math.cos(a), math.sin(a)]) * size * 2
            v = np.array([-math.sin(a), math.cos(a)]) * rng.uniform(0.05, 0.35) * size
            pts = np.array([c - u, c + u, c + u + v, c - u + v])
        else:
            centre = tuple(int(v) for v in rng.uniform(0, size, 2) * 16)
            cv2.circle(img, centre, int(rng.uniform(0.05, 0.5) * size * 16), col, -1, cv2.LINE_AA, shift=4)
            continue
        cv2.fillPoly(img, [np.round(pts * 16).astype(np.int32)], col, cv2.LINE_AA, shift=4)
    if rng.random() < 0.5:  # soft shading over the carton
        img *= _bg_gradient(rng, size).mean(axis=2, keepdims=True) * 0.5 + 0.6
    return img


def _bg_texture(rng, size: int):
    """Smooth colour noise, stripes or dots: textured packaging."""

    base = _bg_gradient(rng, size)
    r = rng.random()
    if r < 0.5:
        g = int(rng.integers(3, 12))
        noise = cv2.resize(rng.random((g, g, 3), dtype=np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
        return np.clip(base + (noise - 0.5) * rng.uniform(0.1, 0.6), 0, 1)
    X, Y = _grid(size)
    a = rng.uniform(0, math.pi)
    period = rng.uniform(0.02, 0.2)
    wave = np.sin(2 * math.pi * ((X * math.cos(a) + Y * math.sin(a)) / period))
    if r < 0.8:
        pattern = (wave > rng.uniform(-0.5, 0.5)).astype(np.float32) if rng.random() < 0.5 else wave * 0.5 + 0.5
    else:
        wave2 = np.sin(2 * math.pi * ((-X * math.sin(a) + Y * math.cos(a)) / period))
        pattern = ((wave * wave2) > rng.uniform(0.3, 0.8)).astype(np.float32)
    other = _packaging_colour(rng)
    amount = rng.uniform(0.15, 0.7)
    return base + (other - base) * (pattern[..., None] * amount)


def _bg_photo(rng, size: int, photos: Sequence[Path]):
    """A blurred crop of a real photo (blurred so that printed text in it is mostly illegible)."""

    path = photos[int(rng.integers(len(photos)))]
    with Image.open(path) as im:
        im.draft("RGB", (size, size))
        im = im.convert("RGB")
        w, h = im.size
        side = rng.uniform(0.35, 1.0) * min(w, h)
        x0, y0 = rng.uniform(0, w - side), rng.uniform(0, h - side)
        im = im.resize((size, size), Image.BILINEAR, box=(x0, y0, x0 + side, y0 + side))
    arr = np.asarray(im, dtype=np.float32) / 255.0
    if rng.random() < 0.5:
        arr = arr[:, ::-1]
    # heavy blur: the real text printed in these photos carries no label, so it must not stay readable
    arr = cv2.GaussianBlur(np.ascontiguousarray(arr), (0, 0), rng.uniform(2.5, 4.5) * size / 320)
    return np.clip((arr - 0.5) * rng.uniform(0.7, 1.1) + 0.5 + rng.uniform(-0.1, 0.1), 0, 1)


def _background(rng, size: int, photos: Sequence[Path]):

    r = rng.random()
    if photos and r < 0.25:
        img = _bg_photo(rng, size, photos)
    else:
        r = rng.random()
        img = (_bg_gradient if r < 0.3 else _bg_cylinders if r < 0.5 else _bg_panels if r < 0.8 else _bg_texture)(rng, size)
    return np.clip(img, 0, 1).astype(np.float32)


def _distractors(rng, img) -> None:
    """Lines, outlines, discs and barcodes: shapes that are not text (drawn in place)."""

    size = img.shape[0]
    for _ in range(int(rng.poisson(1.5))):
        col = tuple(float(v) for v in _packaging_colour(rng))
        kind = rng.random()
        p = np.round(rng.uniform(0, size, (2, 2)) * 16).astype(np.int32)
        thick = int(rng.integers(1, max(2, size // 64)))
        if kind < 0.35:
            cv2.line(img, tuple(p[0]), tuple(p[1]), col, thick, cv2.LINE_AA, shift=4)
        elif kind < 0.55:
            cv2.circle(img, tuple(p[0]), int(rng.uniform(0.02, 0.2) * size * 16), col, thick, cv2.LINE_AA, shift=4)
        elif kind < 0.75:
            cv2.rectangle(img, tuple(p[0]), tuple(p[1]), col, thick, cv2.LINE_AA, shift=4)
        elif kind < 0.9:
            cv2.circle(img, tuple(p[0]), int(rng.uniform(0.01, 0.06) * size * 16), col, -1, cv2.LINE_AA, shift=4)
        else:  # barcode
            x0, y0 = rng.uniform(0, 0.8, 2) * size
            h = rng.uniform(0.06, 0.2) * size
            x = x0
            ink = (0.05, 0.05, 0.05) if rng.random() < 0.8 else col
            for _bar in range(int(rng.integers(15, 40))):
                w = float(rng.choice([1.0, 1.5, 2.0, 3.0])) * size / 320
                if rng.random() < 0.5:
                    cv2.rectangle(img, (int(x * 16), int(y0 * 16)), (int((x + w) * 16), int((y0 + h) * 16)), ink, -1, cv2.LINE_AA, shift=4)
                x += w + float(rng.choice([1.0, 2.0])) * size / 320


# --------------------------------------------------------------------------------------------------- text layout
def _render_line(text: str, font, stroke: int):
    """The line's coverage mask, cropped to its ink, or None when nothing was drawn."""

    left, top, right, bottom = font.getbbox(text, stroke_width=stroke)
    pad = 2
    canvas = Image.new("L", (right - left + 2 * pad, bottom - top + 2 * pad), 0)
    ImageDraw.Draw(canvas).text((pad - left, pad - top), text, font=font, fill=255, stroke_width=stroke, stroke_fill=255)
    mask = np.asarray(canvas)
    rows = np.flatnonzero(mask.max(axis=1))
    cols = np.flatnonzero(mask.max(axis=0))
    if rows.size == 0:
        return None
    return mask[rows[0]: rows[-1] + 1, cols[0]: cols[-1] + 1]


def _layout_block(lines: list, pitch: float, align: str):
    """Stack the line masks into one canvas; returns (canvas, boxes (n, 4) x0 y0 x1 y1, continuous coords)."""

    margin = 3
    widths = [m.shape[1] for m in lines]
    width = max(widths)
    tops, boxes = [], []
    y = 0
    for k, m in enumerate(lines):
        # line k's ink sits on a baseline-ish grid; never let it touch the previous line's ink
        y = max(int(round(k * pitch)), (tops[-1] + lines[k - 1].shape[0] + 2) if k else 0)
        tops.append(y)
    height = tops[-1] + lines[-1].shape[0]
    canvas = np.zeros((height + 2 * margin, width + 2 * margin), np.uint8)
    for m, top, w in zip(lines, tops, widths):
        left = 0 if align == "left" else (width - w) // 2 if align == "centre" else width - w
        x0, y0 = left + margin, top + margin
        region = canvas[y0: y0 + m.shape[0], x0: x0 + w]
        np.maximum(region, m, out=region)
        boxes.append((x0, y0, x0 + w, y0 + m.shape[0]))
    return canvas, np.array(boxes, dtype=np.float64)


def _apply(H, pts):

    pts = np.asarray(pts, dtype=np.float64)
    homo = pts @ H[:, :2].T + H[:, 2]
    return homo[..., :2] / homo[..., 2:3]


def _translate(tx: float, ty: float):

    return np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1]], dtype=np.float64)


def _angle(rng) -> float:
    r = rng.random()
    if r < 0.6:
        return math.radians(float(min(max(rng.normal(0, 2.0), -6.0), 6.0)))
    if r < 0.87:
        return math.radians(float(rng.uniform(-20, 20)))
    return math.radians(float(rng.uniform(-45, 45)))


def _place_block(rng, img, occupied, lines_text: list[str], font, stroke: int, clean: bool, low_contrast: bool):
    """Render one block of lines into ``img`` (float32, in place).

    Returns [(quad, text)] per line; [] when no free spot was found; None when the block is larger than the image.
    """

    size = img.shape[0]
    masks, texts = [], []
    for text in lines_text:
        m = _render_line(text, font, stroke)
        if m is not None:
            masks.append(m)
            texts.append(text)
    if not masks:
        return []
    px = font.size
    canvas, boxes = _layout_block(masks, px * rng.uniform(1.15, 1.6), ["left", "centre", "right"][int(rng.integers(3))])
    cx = (boxes[:, 0].min() + boxes[:, 2].max()) / 2
    cy = (boxes[:, 1].min() + boxes[:, 3].max()) / 2
    radius = 0.5 * math.hypot(boxes[:, 2].max() - boxes[:, 0].min(), boxes[:, 3].max() - boxes[:, 1].min())

    theta = _angle(rng)
    c, s = math.cos(theta), math.sin(theta)
    sx = rng.uniform(0.85, 1.15) if rng.random() < 0.3 else 1.0
    H = np.array([[sx * c, -s, 0], [sx * s, c, 0], [0, 0, 1]], dtype=np.float64) @ _translate(-cx, -cy)
    if rng.random() < 0.4:  # mild perspective: the scale changes by at most ~12 % across the block
        g, h = rng.uniform(-0.12, 0.12, 2) / max(radius, 1.0)
        H = np.array([[1, 0, 0], [0, 1, 0], [g, h, 1]], dtype=np.float64) @ H
    corners = np.stack([boxes[:, [0, 1]], boxes[:, [2, 1]], boxes[:, [2, 3]], boxes[:, [0, 3]]], axis=1)  # (n,4,2)
    quads0 = _apply(H, corners)
    margin = 2.0
    lo = margin - quads0.reshape(-1, 2).min(axis=0)
    hi = size - margin - quads0.reshape(-1, 2).max(axis=0)
    if np.any(hi < lo):
        return None  # too large for the image at this size
    for _attempt in range(6):
        t = rng.uniform(lo, hi)
        quads = quads0 + t
        x0, y0 = np.floor(quads.reshape(-1, 2).min(axis=0)).astype(int)
        x1, y1 = np.ceil(quads.reshape(-1, 2).max(axis=0)).astype(int)
        cand = np.zeros((y1 - y0, x1 - x0), np.uint8)
        for q in quads:
            cv2.fillConvexPoly(cand, np.round((q - (x0, y0)) * 16).astype(np.int32), 1, cv2.LINE_8, shift=4)
        area = int(cand.sum())
        if area == 0:
            return []
        if int((cand & occupied[y0:y1, x0:x1]).sum()) <= 0.03 * area:
            break
    else:
        return []
    occupied[y0:y1, x0:x1] |= cand
    Ht = _translate(*t) @ H

    # pixels: warp the canvas into the region its corners cover (continuous coords -> OpenCV pixel centres)
    ch, cw = canvas.shape
    frame = _apply(Ht, np.array([[0, 0], [cw, 0], [cw, ch], [0, ch]], dtype=np.float64))
    X0, Y0 = np.maximum(np.floor(frame.min(axis=0)).astype(int) - 1, 0)
    X1, Y1 = np.minimum(np.ceil(frame.max(axis=0)).astype(int) + 1, size)
    M = _translate(-X0 - 0.5, -Y0 - 0.5) @ Ht @ _translate(0.5, 0.5)
    alpha = cv2.warpPerspective(canvas, M, (int(X1 - X0), int(Y1 - Y0)), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    a = alpha.astype(np.float32)[..., None] * (1.0 / 255.0)
    roi = img[Y0:Y1, X0:X1]
    weight = float(a.sum())
    bg = (roi * a).reshape(-1, 3).sum(axis=0) / max(weight, 1e-6)
    bg_luma = _luma(bg)
    if clean:
        colour = np.zeros(3, np.float32) if bg_luma > 0.5 else np.ones(3, np.float32)
        opacity = 1.0
        fill = colour
    else:
        colour = _text_colour(rng, bg_luma, low_contrast)
        opacity = rng.uniform(0.85, 1.0)
        fill = colour
        if rng.random() < 0.2:  # two-tone gradient down the text (foil, print shading)
            other = _with_luma(_packaging_colour(rng), _luma(colour))
            yy, xx = np.mgrid[Y0:Y1, X0:X1].astype(np.float32)
            v = (-(xx - (X0 + X1) / 2) * s + (yy - (Y0 + Y1) / 2) * c) / max(Y1 - Y0, X1 - X0, 1) + 0.5
            fill = colour + np.clip(v, 0, 1)[..., None] * (other - colour)
    roi += (fill - roi) * (a * opacity)
    return [(q, text) for q, text in zip(quads, texts)]


def _photometric(rng, img):
    """Lighting, resolution loss, blur, sensor noise, brightness / contrast, gamma (float32 [0, 1] -> uint8)."""

    size = img.shape[0]
    if rng.random() < 0.3:
        light = cv2.resize(_bg_gradient(rng, 32).mean(axis=2), (size, size), interpolation=cv2.INTER_LINEAR)
        img = img * (light * rng.uniform(0.3, 0.8) + rng.uniform(0.5, 0.8))[..., None]
    if rng.random() < 0.12:
        small = max(16, int(size * rng.uniform(0.5, 0.8)))
        img = cv2.resize(cv2.resize(img, (small, small), interpolation=cv2.INTER_AREA), (size, size), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.35:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.4, 1.1))
    if rng.random() < 0.5:
        shape = (size, size, 1) if rng.random() < 0.5 else img.shape  # luminance-only or colour noise
        img = img + rng.standard_normal(shape, dtype=np.float32) * np.float32(rng.uniform(0.005, 0.03))
    contrast, brightness = (rng.uniform(0.75, 1.2), rng.uniform(-0.12, 0.12)) if rng.random() < 0.7 else (1.0, 0.0)
    out = np.multiply(img, np.float32(255.0 * contrast))
    out += np.float32(255.0 * (0.5 - 0.5 * contrast + brightness) + 0.5)
    np.clip(out, 0, 255, out=out)
    out = out.astype(np.uint8)
    if rng.random() < 0.3:
        gamma = rng.uniform(0.7, 1.4)
        table = np.clip(255.0 * (np.arange(256) / 255.0) ** gamma + 0.5, 0, 255).astype(np.uint8)
        out = cv2.LUT(out, table)
    return out


def render_sample(seed: int, index: int, size: int = 320, fonts: Sequence[Path] | None = None,
                  photos: Sequence[Path] = (), clean: bool = False):
    """Image ``index`` of the set ``seed``: (RGB uint8 (size, size, 3), quads (n, 4, 2) float64, texts, ignore).

    ``clean`` renders opaque black or white text on one flat colour with no distractors and no photometric noise
    (the geometry is drawn exactly as usual): tests use it to check that every quad hugs its ink.
    """

    fonts = list(fonts) if fonts is not None else find_fonts()
    rng = np.random.default_rng([int(seed), int(index)])
    if clean:
        img = np.empty((size, size, 3), np.float32)
        img[:] = _packaging_colour(rng)
    else:
        img = _background(rng, size, photos)
        if rng.random() < 0.6:
            _distractors(rng, img)
    occupied = np.zeros((size, size), np.uint8)
    instances: list = []
    n_blocks = min(1 + int(rng.poisson(3.5)), 10)
    scale = size / 320.0
    for _ in range(n_blocks):
        n_lines = 1 if rng.random() < 0.78 else int(rng.integers(2, 5))
        texts = [random_text(rng) for _ in range(n_lines)]
        font_path = str(fonts[int(rng.integers(len(fonts)))])
        hi = (64.0 if n_lines == 1 else 30.0) * scale
        px = math.exp(rng.uniform(math.log(7.0), math.log(max(hi, 8.0))))
        stroke = 1 if (px > 18 and rng.random() < 0.1) else 0
        low = (not clean) and rng.random() < 0.1
        for _shrink in range(4):
            placed = _place_block(rng, img, occupied, texts, _font(font_path, max(6, int(round(px)))), stroke, clean, low)
            if placed is not None:
                instances.extend(placed)
                break
            px *= 0.7  # did not fit: smaller
    image = np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8) if clean else _photometric(rng, img)
    quads = np.array([q for q, _ in instances], dtype=np.float64).reshape(-1, 4, 2)
    texts = [t for _, t in instances]
    heights = np.minimum(np.linalg.norm(quads[:, 3] - quads[:, 0], axis=1), np.linalg.norm(quads[:, 2] - quads[:, 1], axis=1))
    ignore = [bool(h < MIN_TEXT_HEIGHT) for h in heights]
    # the JPEG quality is drawn last so that the pixels above do not depend on it
    return image, quads, texts, ignore, int(rng.integers(45, 96))


# --------------------------------------------------------------------------------------------------- writing
_WORKER: dict[str, Any] = {}


def _init_worker(fonts: Sequence[str], photos: Sequence[str], size: int, seed: int, folder: str, threads: int | None) -> None:

    if threads is not None:
        cv2.setNumThreads(threads)
    _WORKER.update(fonts=[Path(f) for f in fonts], photos=[Path(p) for p in photos], size=size, seed=seed, folder=Path(folder))


def _write_one(index: int) -> str:

    w = _WORKER
    image, quads, texts, ignore, quality = render_sample(w["seed"], index, w["size"], w["fonts"], w["photos"])
    name = f"{index:06d}.jpg"
    Image.fromarray(image).save(w["folder"] / name, "JPEG", quality=quality)
    record = {"image": name, "quads": [[[round(float(x), 2), round(float(y), 2)] for x, y in q] for q in quads],
              "texts": texts, "ignore": ignore}
    return json.dumps(record, ensure_ascii=False)


def generate(out_dir: Path, count: int, seed: int, size: int = 320, photo_dir: Path | None = None,
             workers: int = 1) -> Path:
    """Write ``count`` images ``NNNNNN.jpg`` and their ``labels.jsonl`` (DEVELOPERS.md) into ``out_dir``.

    Atomic: everything is written to a temporary sibling folder that is renamed at the end. An existing
    ``out_dir`` is replaced only when it is empty or holds a labels.jsonl (a previous sample set).
    """
    out_dir = Path(out_dir)
    if count < 1:
        raise ShadematchError(f"--count must be at least 1 (got {count})")
    if seed < 0:
        raise ShadematchError(f"--seed must be >= 0 (got {seed})")
    if size < 64:
        raise ShadematchError(f"--size must be at least 64 pixels (got {size})")
    if workers < 1:
        raise ShadematchError(f"--workers must be at least 1 (got {workers})")
    if out_dir.exists() and (not out_dir.is_dir() or (any(out_dir.iterdir()) and not (out_dir / LABELS).exists())):
        raise ShadematchError(f"{out_dir} exists and is not a text sample directory; choose another --out")
    fonts = [str(p) for p in find_fonts()]
    photos = [str(p) for p in find_photos(photo_dir)] if photo_dir is not None else []

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        init = (fonts, photos, size, seed, str(tmp))
        if workers == 1:
            _init_worker(*init, None)
            lines = map(_write_one, range(count))
            _write_labels(tmp, lines)
        else:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor
            from concurrent.futures.process import BrokenProcessPool

            # spawn, not fork: the caller may hold threads (OpenCV, torch) that a fork would copy mid-flight
            try:
                with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_init_worker, initargs=(*init, 1)) as pool:
                    chunk = max(1, min(32, count // (4 * workers)))
                    _write_labels(tmp, pool.map(_write_one, range(count), chunksize=chunk))
            except BrokenProcessPool as exc:
                raise ShadematchError(f"a worker process died ({exc}); run with --workers 1 to see why") from exc
        if out_dir.exists():
            trash = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
            os.replace(out_dir, trash / "old")
            os.replace(tmp, out_dir)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def _write_labels(folder: Path, lines) -> None:
    with open(folder / LABELS, "w", encoding="utf-8", newline="\n") as handle:
        for line in lines:
            handle.write(line + "\n")


# --------------------------------------------------------------------------------------------------- CLI
