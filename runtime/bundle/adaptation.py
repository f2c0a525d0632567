"""`adaptation.npz`: what an adapted projection was learned from (export.bundle.projection), kept in the bundle so that
`shadematch tune` can re-make the projection with another shrinkage without the catalogue's images."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Scatter:
    """What an adapted projection is made from: the samples' mean, within- and between-product scatter (D, D),
    and how many products. Kept in the bundle (`adaptation.npz`) so that `shadematch tune` can re-make the
    projection with another shrinkage without the catalogue's images."""

    mean: np.ndarray
    within: np.ndarray
    between: np.ndarray
    groups: int
    rows: int



def save_adaptation(path: Path, scatter: Scatter, descriptors: np.ndarray) -> None:
    """`adaptation.npz`: the scatter and the catalogue's rows before projection (float16: half the bytes, and
    float16 rounding moves a cosine by ~1e-3, below what re-tuning a shrinkage can see)."""
    np.savez(path, mean=scatter.mean.astype(np.float32), within=scatter.within.astype(np.float32),
             between=scatter.between.astype(np.float32), groups=np.int64(scatter.groups), rows=np.int64(scatter.rows),
             descriptors=np.asarray(descriptors, dtype=np.float16))


def load_adaptation(path: Path) -> tuple[Scatter, np.ndarray]:
    """The scatter and the float32 rows before projection from `adaptation.npz`; ValueError if malformed."""
    try:
        with np.load(path, allow_pickle=False) as data:
            scatter = Scatter(data["mean"].astype(np.float64), data["within"].astype(np.float64),
                              data["between"].astype(np.float64), int(data["groups"]), int(data["rows"]))
            descriptors = data["descriptors"].astype(np.float32)
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise ValueError(f"{path}: not a valid adaptation file ({exc})") from None
    width = len(scatter.mean)
    if scatter.within.shape != (width, width) or scatter.between.shape != (width, width) or descriptors.ndim != 2 \
            or descriptors.shape[1] != width:
        raise ValueError(f"{path}: adaptation arrays disagree on the descriptor width {width}")
    return scatter, descriptors
