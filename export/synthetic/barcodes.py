"""Store-like photos of products that carry a printed EAN-13: the barcode tests' and benchmark's query photos.

A product picture is printed on a package with a white label holding the barcode (rendered by zxing-cpp, with
its digits), and the package is photographed as a kiosk camera would: a 1280x960 frame, the package at a slant
(a perspective warp and a rotation), on a cluttered background, slightly out of focus, JPEG-compressed.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageOps

from runtime.barcode.gtin import check_digit

#: The kiosk camera's frame (runtime/kiosk/static asks the browser for 1280x960).
FRAME = (1280, 960)


def ean13(body: int) -> str:
    """An EAN-13 of a 12-digit ``body``, with its check digit."""
    digits = f"{body:012d}"
    return digits + str(check_digit(digits))


@dataclass(frozen=True)
class Shot:
    """How the package is photographed: the barcode label's share of the package's width, the largest tilt
    (degrees) and slant (corner shift, share of the side), and the focus blur (Gaussian sigma, pixels)."""

    label: tuple[float, float] = (0.55, 0.65)
    tilt: float = 15.0
    slant: float = 0.08
    blur: tuple[float, float] = (0.3, 0.8)


#: Softer and more oblique than a shopper holding a product up to the kiosk: where a quick read misdecodes.
HARSH = Shot(tilt=20.0, slant=0.10, blur=(0.5, 1.1))


def barcode_photo(product: Image.Image, gtin: str, rng: np.random.Generator, frame: tuple[int, int] = FRAME,
                  barcode: bool = True, shot: Shot = Shot()) -> Image.Image:
    """A photo of ``product``'s package with ``gtin`` printed on it (``barcode`` False: the same package and
    scene without one, the control a test compares against)."""
    import zxingcpp

    side = int(frame[1] * rng.uniform(0.62, 0.78))
    package = product.convert("RGB").resize((side, side), Image.Resampling.BICUBIC)
    if barcode:
        bars = np.asarray(zxingcpp.write_barcode_to_image(zxingcpp.create_barcode(gtin, zxingcpp.BarcodeFormat.EAN13),
                                                          scale=3, add_hrt=True))
        bars = Image.fromarray(bars).convert("RGB")
        label = ImageOps.expand(bars, border=(bars.width // 10, bars.width // 20), fill="white")  # the label's margin
        width = int(side * rng.uniform(*shot.label))
        label = label.resize((width, int(label.height * width / label.width)), Image.Resampling.BILINEAR)
        margin = int(side * 0.04)
        package.paste(label, (side - width - margin, side - label.height - margin))
    scene = _background(frame, rng)
    warped = _slant(package, rng, shot.slant)
    angle = rng.uniform(-shot.tilt, shot.tilt)
    warped = warped.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True)
    x = int(rng.uniform(0.05, 0.95) * max(1, frame[0] - warped.width))
    y = int(rng.uniform(0.05, 0.95) * max(1, frame[1] - warped.height))
    scene.paste(warped.convert("RGB"), (x, y), warped.getchannel("A"))
    scene = scene.filter(ImageFilter.GaussianBlur(rng.uniform(*shot.blur)))
    buffer = io.BytesIO()
    scene.save(buffer, "JPEG", quality=int(rng.integers(78, 90)))
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def _slant(package: Image.Image, rng: np.random.Generator, slant: float) -> Image.Image:
    """The package seen off-axis: its corners moved by up to ``slant`` of its side (a perspective warp), with an
    alpha channel that is 0 outside it."""
    side = package.width
    jitter = rng.uniform(0, slant * side, size=(4, 2))
    corners = [(jitter[0, 0], jitter[0, 1]), (side - jitter[1, 0], jitter[1, 1]),
               (side - jitter[2, 0], side - jitter[2, 1]), (jitter[3, 0], side - jitter[3, 1])]
    coefficients = _perspective(corners, [(0, 0), (side, 0), (side, side), (0, side)])
    rgba = package.convert("RGBA")
    return rgba.transform((side, side), Image.Transform.PERSPECTIVE, coefficients, Image.Resampling.BICUBIC)


def _perspective(target: list[tuple[float, float]], source: list[tuple[float, float]]) -> list[float]:
    """PIL's 8 perspective coefficients mapping output points ``target`` to input points ``source``."""
    rows = []
    for (x, y), (u, v) in zip(target, source):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
    rhs = np.array([coordinate for point in source for coordinate in point], dtype=np.float64)
    return list(np.linalg.solve(np.array(rows, dtype=np.float64), rhs))


def _background(frame: tuple[int, int], rng: np.random.Generator) -> Image.Image:
    """A shelf-like clutter of coloured boxes and stripes."""
    scene = Image.new("RGB", frame, tuple(int(c) for c in rng.integers(60, 200, 3)))
    draw = ImageDraw.Draw(scene)
    for _ in range(24):
        x0, y0 = int(rng.integers(0, frame[0])), int(rng.integers(0, frame[1]))
        x1, y1 = x0 + int(rng.integers(40, 400)), y0 + int(rng.integers(40, 300))
        draw.rectangle((x0, y0, x1, y1), fill=tuple(int(c) for c in rng.integers(0, 255, 3)))
    return scene
