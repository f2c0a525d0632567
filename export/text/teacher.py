"""Pseudo-labels for real photos from the PP-OCR text detector of `rapidocr-onnxruntime` (Apache-2.0).

The teacher is used only at training time, to adapt our EAST detector to real store photos (glare,
curved cartons, small print) that synthetic renderings do not cover; it never ships in a bundle.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable

import numpy as np
from tqdm import tqdm

#: Boxes shorter than this (pixels) are marked ignore: too small to read, too noisy to learn from.
MIN_TEXT_HEIGHT = 8.0


def _teacher():
    try:
        from rapidocr_onnxruntime import RapidOCR
    except ImportError as exc:
        raise ImportError("the PP-OCR teacher needs `pip install rapidocr-onnxruntime`") from exc
    return RapidOCR()


def teacher_quads(engine, image_path: Path) -> np.ndarray:
    """PP-OCR detection boxes (n, 4, 2), clockwise from top-left, in image pixels."""
    boxes, _ = engine(str(image_path), use_det=True, use_cls=False, use_rec=False)
    return np.asarray(boxes or [], dtype=np.float32).reshape(-1, 4, 2)


def _height(quad: np.ndarray) -> float:
    return float(min(np.linalg.norm(quad[3] - quad[0]), np.linalg.norm(quad[2] - quad[1])))


def pseudo_label(photos: Iterable[Path], out_dir: Path, progress: bool = True) -> Path:
    """Copy ``photos`` into a sample directory with the teacher's boxes as labels (DEVELOPERS.md format)."""
    photos = list(photos)
    engine = _teacher()
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        with open(tmp / "labels.jsonl", "w", encoding="utf-8") as labels:
            for number, photo in enumerate(tqdm(photos, unit="img", desc="teacher", disable=not progress)):
                name = f"{number:06d}{photo.suffix.lower()}"
                shutil.copyfile(photo, tmp / name)
                quads = teacher_quads(engine, photo)
                labels.write(json.dumps({
                    "image": name,
                    "source": str(photo),
                    "quads": quads.round(1).tolist(),
                    "texts": [""] * len(quads),
                    "ignore": [_height(q) < MIN_TEXT_HEIGHT for q in quads],
                }) + "\n")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out_dir
