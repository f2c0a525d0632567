"""Learning a bundle's descriptor projection (runtime.projection): a centred PCA of the catalogue's descriptors.

scikit-learn's PCA does the fit (its "auto" solver picks randomised SVD at catalogue sizes); at 500K x 1280
it fits on a seeded sample of rows, since the leading axes of a catalogue settle long before every row is seen.
"""
from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA

from runtime.projection import Projection

#: Rows the PCA is fitted on at most (a seeded sample beyond that).
FIT_ROWS = 100_000


def check_dims(dims: int, width: int, rows: int) -> None:
    """ValueError unless a PCA of ``rows`` descriptors of ``width`` dims can have ``dims`` components."""
    if not 1 <= dims < width:
        raise ValueError(f"--reduce-dim {dims}: must be between 1 and {width - 1} (the descriptors have {width} dims)")
    if dims >= rows:
        raise ValueError(f"--reduce-dim {dims}: a PCA needs more catalogue rows than dims "
                         f"(use fewer dims than catalogue rows ({rows}))")


def learn_projection(vectors: np.ndarray, dims: int, fit_rows: int = FIT_ROWS, seed: int = 0) -> tuple[Projection, dict]:
    """A PCA projection to ``dims`` dimensions and what to record about it (rows fitted, variance kept)."""
    rows, width = vectors.shape
    check_dims(dims, width, rows)
    chosen = np.sort(np.random.default_rng(seed).choice(rows, fit_rows, replace=False)) if rows > fit_rows else slice(None)
    sample = np.asarray(vectors[chosen], dtype=np.float32)
    pca = PCA(n_components=dims, random_state=seed).fit(sample)
    projection = Projection(pca.mean_.astype(np.float32), np.ascontiguousarray(pca.components_.T, dtype=np.float32))
    info = {"kind": "pca", "in_dim": width, "out_dim": dims, "fit_rows": len(sample),
            "variance_kept": round(float(pca.explained_variance_ratio_.sum()), 4)}
    return projection, info
