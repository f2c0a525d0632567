"""A bundle's descriptor projection: SR-MAC descriptors (D dims) -> the space its index lives in (d dims).

One linear map, learned at build time (`export.bundle.projection`) in one of two ways, recorded in the manifest's
`descriptor.projection.kind`:
- "adapted": whitening of the catalogue's within-product scatter, then its between-product directions
  (regularised LDA). Why: cosine similarity then weighs what tells this catalogue's products apart; on the
  Grocery Store val photos it lifted the in-store top-1 from 0.74 to over 0.8 (benchmarks/grocery/README.md).
- "pca": a centred PCA. Why: at 500K items a 1280-d float32 index is 2.5 GB held twice (vectors + graph), and
  build, load and query time all grow with the dimension; 256 dims kept the in-store mAP@7 (README, "Speed
  and scale"). Unsupervised PCA *whitening* lost 1-6 points and is not offered.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import BundleError

#: Rows projected at a time: bounds the temporary (rows x D) copy when a whole catalogue is projected.
CHUNK_ROWS = 65_536


@dataclass(frozen=True)
class Projection:
    """y = normalise((x - mean) @ components): unit-length output like every descriptor."""

    mean: np.ndarray  # (D,) float32
    components: np.ndarray  # (D, d) float32: principal axes (PCA) or whitened between-product axes (adapted)

    @property
    def in_dim(self) -> int:
        return int(self.components.shape[0])

    @property
    def out_dim(self) -> int:
        return int(self.components.shape[1])

    def apply(self, descriptors: np.ndarray) -> np.ndarray:
        """(N, D) descriptors -> (N, d) unit vectors, float32; a catalogue is done in chunks to bound memory."""
        descriptors = np.asarray(descriptors)
        if descriptors.ndim != 2 or descriptors.shape[1] != self.in_dim:
            raise ValueError(f"expected descriptors of shape (N, {self.in_dim}), got {descriptors.shape}")
        out = np.empty((len(descriptors), self.out_dim), dtype=np.float32)
        for start in range(0, len(descriptors), CHUNK_ROWS):
            part = (np.asarray(descriptors[start : start + CHUNK_ROWS], dtype=np.float32) - self.mean) @ self.components
            norms = np.linalg.norm(part, axis=1, keepdims=True)
            out[start : start + len(part)] = part / np.maximum(norms, np.float32(1e-12))
        return out

    def save(self, path: Path) -> None:
        np.savez(path, mean=self.mean, components=self.components)

    @classmethod
    def load(cls, path: Path) -> "Projection":
        """Read and check a projection file (shapes, dtype, finite values): a bad one is a BundleError."""
        try:
            with np.load(path, allow_pickle=False) as data:
                mean, components = data["mean"], data["components"]
        except (OSError, ValueError, KeyError) as exc:
            raise BundleError(f"{path}: not a valid projection file ({exc})") from None
        if (mean.dtype != np.float32 or components.dtype != np.float32 or mean.ndim != 1 or components.ndim != 2
                or components.shape[0] != mean.shape[0] or not components.shape[1] <= components.shape[0]):
            raise BundleError(f"{path}: projection arrays are {mean.dtype} {mean.shape} and {components.dtype} "
                              f"{components.shape}; expected float32 (D,) and (D, d) with d <= D")
        if not (np.isfinite(mean).all() and np.isfinite(components).all()):
            raise BundleError(f"{path}: projection holds non-finite values")
        return cls(mean, components)
