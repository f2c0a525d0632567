"""Draw detected text boxes over a photo, for a person to check the detector."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from PIL import Image, ImageDraw

from .detector import TextBox


def draw_overlay(image: Image.Image, boxes: Sequence[TextBox], out: Path) -> Path:
    """Save ``image`` with each box outlined and its score written at its top-left corner."""
    canvas = image.convert("RGB").copy()
    draw = ImageDraw.Draw(canvas)
    width = max(2, round(max(canvas.size) / 300))
    for box in boxes:
        points = [tuple(map(float, p)) for p in box.quad]
        draw.line(points + points[:1], fill=(255, 40, 40), width=width)
        x, y = points[0]
        draw.text((x, max(0.0, y - 11)), f"{box.score:.2f}", fill=(255, 255, 0))
    out = Path(out)
    tmp = out.with_name(f".{out.name}.tmp")
    canvas.save(tmp, format="PNG")
    tmp.replace(out)
    return out
