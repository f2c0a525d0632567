"""Generated photos that show no product: what a kiosk camera sees when nobody holds a product up to it (a wall,
a floor, a hand's blur, a blank screen). They teach a bundle what "not found" looks like at build time and measure
it in `eval`, without downloading anything: each kind is drawn from a seeded generator, so a set is reproducible
and two seeds give disjoint sets."""
from __future__ import annotations

from typing import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

Painter = Callable[[np.random.Generator, int, int], Image.Image]


def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
    return tuple(int(c) for c in rng.integers(0, 256, 3))  # type: ignore[return-value]


def _solid(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    return Image.new("RGB", (width, height), _colour(rng))


def _linear_gradient(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    angle = rng.uniform(0, 2 * np.pi)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    t = x * np.cos(angle) + y * np.sin(angle)
    t = (t - t.min()) / max(float(np.ptp(t)), 1.0)
    a, b = np.array(_colour(rng), np.float32), np.array(_colour(rng), np.float32)
    return Image.fromarray((a + t[..., None] * (b - a)).astype(np.uint8))


def _radial_gradient(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    cx, cy = rng.uniform(0, width), rng.uniform(0, height)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    t = np.hypot(x - cx, y - cy)
    t = t / max(float(t.max()), 1.0)
    a, b = np.array(_colour(rng), np.float32), np.array(_colour(rng), np.float32)
    return Image.fromarray((a + t[..., None] * (b - a)).astype(np.uint8))


def _noise(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def _clouds(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """Smooth noise: a coarse random grid blown up, like a blurred wall, floor or sky."""
    cells = int(rng.integers(3, 12))
    coarse = Image.fromarray(rng.integers(0, 256, (cells, cells, 3), dtype=np.uint8))
    return coarse.resize((width, height), Image.BICUBIC).filter(ImageFilter.GaussianBlur(rng.uniform(1, 6)))


def _tiny(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """An 8 x 8 picture (or thereabouts) shown blocky, as a thumbnail sent by mistake."""
    side = int(rng.integers(4, 12))
    return Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).resize((width, height), Image.NEAREST)


def _stripes(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    period = int(rng.integers(6, 80))
    y, x = np.mgrid[0:height, 0:width]
    across = (x // period) % 2 if rng.random() < 0.5 else (y // period) % 2
    if rng.random() < 0.4:  # a chequerboard
        across = ((x // period) + (y // period)) % 2
    a, b = np.array(_colour(rng), np.uint8), np.array(_colour(rng), np.uint8)
    return Image.fromarray(np.where(across[..., None] == 1, a, b).astype(np.uint8))


def _shapes(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """Flat shapes over a smooth background: furniture, signs, a sleeve passing the camera."""
    image = _clouds(rng, width, height) if rng.random() < 0.5 else _solid(rng, width, height)
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(1, 8))):
        x0, x1 = sorted(rng.uniform(-0.2, 1.2, 2) * width)
        y0, y1 = sorted(rng.uniform(-0.2, 1.2, 2) * height)
        box = (x0, y0, x1, y1)
        kind = rng.integers(0, 3)
        if kind == 0:
            draw.ellipse(box, fill=_colour(rng))
        elif kind == 1:
            draw.rectangle(box, fill=_colour(rng))
        else:
            draw.line(box, fill=_colour(rng), width=int(rng.integers(2, 30)))
    return image


#: Kind name -> painter; each generated photo is one of them, in turn.
KINDS: dict[str, Painter] = {
    "solid": _solid, "linear gradient": _linear_gradient, "radial gradient": _radial_gradient, "noise": _noise,
    "clouds": _clouds, "tiny picture": _tiny, "stripes": _stripes, "shapes": _shapes,
}


def non_product_photos(count: int, seed: int, *, size: tuple[int, int] = (480, 640)) -> list[tuple[str, Image.Image]]:
    """``count`` generated photos (kind, RGB image), the kinds in turn, each drawn from ``seed``'s generator; a
    photo's shape varies around ``size`` (width, height) as phone photos and webcam frames do."""
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    rng = np.random.default_rng(seed)
    names = list(KINDS)
    photos = []
    for i in range(count):
        scale = rng.uniform(0.6, 1.2)
        width, height = (int(side * scale) for side in (size if rng.random() < 0.7 else size[::-1]))
        name = names[i % len(names)]
        photos.append((name, KINDS[name](rng, width, height)))
    return photos
