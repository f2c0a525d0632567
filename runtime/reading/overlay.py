"""Draw the text read on a photo over it, for a person to check the reader."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from PIL import Image, ImageDraw

from ..errors import ShadematchError
from .reader import Word

#: Overlay file extensions and the Pillow format each one names.
OVERLAY_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}


def overlay_format(out: Path) -> str:
    """The Pillow format ``out``'s extension names; ShadematchError for another extension or a missing folder,
    so the command can refuse ``--out`` before the reader runs."""
    chosen = OVERLAY_FORMATS.get(out.suffix.lower())
    if chosen is None:
        raise ShadematchError(f"--out {out}: unknown picture extension {out.suffix or '(none)'!r}; "
                              f"use one of {', '.join(OVERLAY_FORMATS)}")
    folder = out.parent
    if not folder.is_dir():
        raise ShadematchError(f"--out {out}: no folder {folder} (create it first)")
    return chosen


def draw_overlay(image: Image.Image, words: Sequence[Word], out: Path) -> Path:
    """Save ``image`` with each word's box outlined and what was read written above it, in the format ``out``'s
    extension names. Written to a temporary file beside ``out`` and renamed, so ``out`` is never half-written."""
    out = Path(out)
    chosen = overlay_format(out)
    canvas = image.convert("RGB").copy()
    draw = ImageDraw.Draw(canvas)
    width = max(2, round(max(canvas.size) / 300))
    for word in words:
        x0, y0, x1, y1 = word.box
        draw.rectangle((x0, y0, x1, y1), outline=(255, 40, 40), width=width)
        draw.text((x0, max(0.0, y0 - 11)), f"{word.text} ({word.confidence:.2f})", fill=(255, 255, 0))
    # the process id keeps two writers apart; a plain open keeps the umask's permissions (mkstemp's are 0600)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        canvas.save(tmp, format=chosen)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return out
