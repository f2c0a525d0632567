"""Draw the text read on a photo over it, for a person to check the reader."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from PIL import Image, ImageDraw

from .reader import Word


def draw_overlay(image: Image.Image, words: Sequence[Word], out: Path) -> Path:
    """Save ``image`` (as PNG, atomically) with each word's box outlined and what was read written above it."""
    canvas = image.convert("RGB").copy()
    draw = ImageDraw.Draw(canvas)
    width = max(2, round(max(canvas.size) / 300))
    for word in words:
        x0, y0, x1, y1 = word.box
        draw.rectangle((x0, y0, x1, y1), outline=(255, 40, 40), width=width)
        draw.text((x0, max(0.0, y0 - 11)), f"{word.text} ({word.confidence:.2f})", fill=(255, 255, 0))
    out = Path(out)
    tmp = out.with_name(f".{out.name}.tmp")
    canvas.save(tmp, format="PNG")
    tmp.replace(out)
    return out
