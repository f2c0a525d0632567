"""Learning a bundle's descriptor projection (runtime.describe.projection) at build time.

Two kinds:

- ``adapted`` (the default wherever the catalogue allows it): a supervised linear map learned from the catalogue's
  own product identities (``group``). It whitens the within-product scatter (how one product's images differ:
  viewpoint, light, shelf) after shrinking it towards a multiple of the identity, then rotates onto the
  between-product directions and keeps those (regularised LDA; the "learned whitening" of Radenovic, Tolias, Chum,
  "Fine-tuning CNN image retrieval with no human annotation", TPAMI 2018, with product groups in place of
  matching pairs). Cosine similarity in that space compares what tells products apart, not what varies within
  one. Where a product has a single catalogue image, its within-product scatter comes from store-like views of
  that image (`export.train.augment.store_like`, made by the caller).
- ``pca``: a centred PCA of the descriptors (`--reduce-dim N` on large catalogues): unsupervised, for size.

scikit-learn's PCA does the PCA fit; the adapted map is closed-form linear algebra on (D, D) scatter matrices,
seconds at D = 1280 whatever the catalogue size (rows beyond FIT_ROWS are a seeded sample).
"""
from __future__ import annotations

import time
from typing import Sequence

import numpy as np
from sklearn.decomposition import PCA

from runtime.bundle.adaptation import Scatter
from runtime.describe.projection import Projection

#: Rows a projection is fitted on at most (a seeded sample beyond that).
FIT_ROWS = 100_000
#: Shrinkage of the within-product scatter towards (its mean eigenvalue) x I, by where the scatter comes from.
#: Chosen on the Grocery Store val photos (benchmarks/grocery/README.md): the catalogue's own photos of a product
#: show real variation and want little shrinkage; synthetic views only approximate a store, so trust them less.
SHRINKAGE_FROM_IMAGES = 0.3
SHRINKAGE_FROM_VIEWS = 0.7


def check_dims(dims: int, width: int, rows: int) -> None:
    """ValueError unless a PCA of ``rows`` descriptors of ``width`` dims can have ``dims`` components."""
    if not 1 <= dims < width:
        raise ValueError(f"--reduce-dim {dims}: must be between 1 and {width - 1} (the descriptors have {width} dims)")
    if dims >= rows:
        raise ValueError(f"--reduce-dim {dims}: a PCA needs more catalogue rows than dims "
                         f"(use fewer dims than catalogue rows ({rows}))")


def _sample(rows: int, fit_rows: int, seed: int) -> np.ndarray | slice:
    return np.sort(np.random.default_rng(seed).choice(rows, fit_rows, replace=False)) if rows > fit_rows else slice(None)


def learn_projection(vectors: np.ndarray, dims: int, fit_rows: int = FIT_ROWS, seed: int = 0) -> tuple[Projection, dict]:
    """A PCA projection to ``dims`` dimensions and what to record about it (rows fitted, variance kept)."""
    rows, width = vectors.shape
    check_dims(dims, width, rows)
    sample = np.asarray(vectors[_sample(rows, fit_rows, seed)], dtype=np.float32)
    pca = PCA(n_components=dims, random_state=seed).fit(sample)
    projection = Projection(pca.mean_.astype(np.float32), np.ascontiguousarray(pca.components_.T, dtype=np.float32))
    info = {"kind": "pca", "in_dim": width, "out_dim": dims, "fit_rows": len(sample),
            "variance_kept": round(float(pca.explained_variance_ratio_.sum()), 4)}
    return projection, info


def product_scatter(vectors: np.ndarray, groups: Sequence[str], fit_rows: int = FIT_ROWS, seed: int = 0) -> Scatter:
    """Within- and between-product scatter of descriptors ``vectors`` (N, D) labelled by product ``groups``.

    ValueError when the samples cannot show any within-product variation (no product with two samples) or hold
    fewer than two products."""
    rows, width = vectors.shape
    if len(groups) != rows:
        raise ValueError(f"{rows} descriptors but {len(groups)} group labels")
    chosen = _sample(rows, fit_rows, seed)
    X = np.asarray(vectors[chosen], dtype=np.float64)
    names, label = np.unique(np.asarray(groups, dtype=object)[chosen].astype(str), return_inverse=True)
    counts = np.bincount(label)
    if len(names) < 2:
        raise ValueError("an adapted projection needs at least two products (groups)")
    if counts.max() < 2:
        raise ValueError("an adapted projection needs some product with two or more images or store-like views "
                         "(every product has one image: use --views N, or --projection none)")
    mean = X.mean(axis=0)
    class_means = np.zeros((len(names), width))
    np.add.at(class_means, label, X)
    class_means /= counts[:, None]
    residual = X - class_means[label]
    centred = class_means - mean
    return Scatter(mean, residual.T @ residual / len(X), (centred * counts[:, None]).T @ centred / len(X),
                   len(names), len(X))


def adapted_projection(scatter: Scatter, shrinkage: float, dims: int = 0) -> Projection:
    """Regularised LDA from ``scatter``: whiten S_w <- (1 - a) S_w + a (tr S_w / D) I (a = ``shrinkage``), then keep
    the ``dims`` (0: min(products - 1, D)) leading between-product directions in the whitened space."""
    if not 0.0 <= shrinkage <= 1.0:
        raise ValueError(f"shrinkage must be in [0, 1], got {shrinkage}")
    width = len(scatter.mean)
    keep = min(dims or scatter.groups - 1, scatter.groups - 1, width)
    within = (1.0 - shrinkage) * scatter.within + shrinkage * (np.trace(scatter.within) / width) * np.eye(width)
    values, basis = np.linalg.eigh(within)
    whiten = basis / np.sqrt(np.maximum(values, values.max() * 1e-9))  # S_w^(-1/2), in its eigenbasis
    spread, axes = np.linalg.eigh(whiten.T @ scatter.between @ whiten)
    components = whiten @ axes[:, np.argsort(spread)[::-1][:keep]]
    return Projection(scatter.mean.astype(np.float32), np.ascontiguousarray(components, dtype=np.float32))


def learn_adapted_projection(vectors: np.ndarray, groups: Sequence[str], shrinkage: float, dims: int = 0,
                             fit_rows: int = FIT_ROWS, seed: int = 0) -> tuple[Projection, dict, Scatter]:
    """The adapted projection of descriptors ``vectors`` (N, D) labelled by product ``groups``, what to record about
    it, and the scatter it came from. ``vectors`` hold every sample of within-product variation: the catalogue's
    rows and any store-like views of them (labelled with their row's group)."""
    started = time.perf_counter()
    scatter = product_scatter(vectors, groups, fit_rows, seed)
    projection = adapted_projection(scatter, shrinkage, dims)
    info = {"kind": "adapted", "in_dim": projection.in_dim, "out_dim": projection.out_dim, "fit_rows": scatter.rows,
            "groups": scatter.groups, "shrinkage": shrinkage, "seconds": round(time.perf_counter() - started, 2)}
    return projection, info, scatter
