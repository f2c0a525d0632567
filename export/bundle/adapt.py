"""The descriptor adapted to a catalogue, at build time: store-like views where a product has one image, the
projection learned from the catalogue's products (`export.bundle.projection`), and the rows the index then holds.

Why views: a product photographed once in the catalogue shows no within-product variation, yet a shopper's photo
of it will differ (shelf, light, angle). Store-like views of that image (`export.train.augment.store_like`) stand
in for the photos the catalogue lacks. They serve twice: as the product's within-product samples for the
projection, and averaged with the image's own descriptor into the row the index stores (database-side
augmentation), which on the Grocery Store catalogue-only protocol placed the right product first more often
(benchmarks/grocery/README.md). Products with several catalogue images get no views: their images already
show real variation, and their build then costs nothing beyond the closed-form fit.
"""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from PIL import Image

from runtime.bundle.adaptation import Scatter
from runtime.describe.embedder import Embedder
from runtime.describe.image import load_image
from runtime.describe.pooling import l2_normalize
from runtime.describe.projection import Projection

from .catalog import CatalogRow
from .projection import SHRINKAGE_FROM_IMAGES, SHRINKAGE_FROM_VIEWS, learn_adapted_projection, learn_projection
from ..train.augment import store_like
from ..train.saliency import foreground_mask

PROJECTIONS = ("adapted", "pca", "none")
#: Store-like views made per single-image product by default (the Grocery Store measurement: benchmarks/grocery).
DEFAULT_VIEWS = 16
#: Catalogue rows that get views at most; beyond that a seeded sample feeds the fit and no row is averaged,
#: so every indexed row is made the same way.
MAX_VIEW_ROWS = 5_000


@dataclass(frozen=True)
class AdaptOptions:
    """How `build` adapts the descriptor: ``projection`` "adapted" (default), "pca" (needs ``dims``) or "none";
    ``dims`` 0 = every separating direction (adapted); ``views`` per single-image product; ``shrinkage`` None =
    by where the within-product variation comes from (`export.bundle.projection`)."""

    projection: str = "adapted"
    dims: int = 0
    views: int = DEFAULT_VIEWS
    shrinkage: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.projection not in PROJECTIONS:
            raise ValueError(f"projection must be one of {', '.join(PROJECTIONS)}, got {self.projection!r}")
        if self.projection == "pca" and not self.dims:
            raise ValueError("a PCA projection needs --reduce-dim N")
        if self.dims < 0 or self.views < 0:
            raise ValueError(f"need dims >= 0 and views >= 0, got dims={self.dims}, views={self.views}")
        if self.shrinkage is not None and not 0.0 <= self.shrinkage <= 1.0:
            raise ValueError(f"shrinkage must be in [0, 1], got {self.shrinkage}")


def view_rows(groups: Sequence[str], views: int, seed: int) -> np.ndarray:
    """Rows whose product has a single catalogue image (they get views), a seeded sample beyond MAX_VIEW_ROWS."""
    if not views:
        return np.zeros(0, dtype=np.int64)
    sizes = Counter(groups)
    single = np.array([row for row, group in enumerate(groups) if sizes[group] == 1], dtype=np.int64)
    if len(single) > MAX_VIEW_ROWS:
        single = np.sort(np.random.default_rng(seed).choice(single, MAX_VIEW_ROWS, replace=False))
    return single


def store_like_views(image_path: str, count: int, size: int, seed: int, row: int) -> list[np.ndarray]:
    """``count`` store-like views (size x size RGB) of one catalogue image, seeded by (seed, row)."""
    pixels = view_source(image_path, size)
    mask = foreground_mask(pixels)  # once per image, not once per view
    rng = np.random.default_rng((seed, row))
    return [store_like(pixels, mask, rng, size)[0] for _ in range(count)]


def view_source(image_path: str, size: int) -> np.ndarray:
    """The catalogue image as its views start from: RGB uint8, shrunk to 1.5 x the view size."""
    image = load_image(image_path, min_size=size)
    image.thumbnail((int(size * 1.5), int(size * 1.5)), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


@dataclass(frozen=True)
class Adapted:
    """What `adapt` gives the bundle: the rows to index, the projection with what to record about it, and for an
    adapted projection the scatter and the rows before projection (`shadematch tune` re-fits from them)."""

    vectors: np.ndarray
    projection: tuple[Projection, dict] | None = None
    scatter: Scatter | None = None
    raw: np.ndarray | None = None


def adapt(vectors: np.ndarray, rows: Sequence[CatalogRow], embedder: Embedder | None, options: AdaptOptions,
          progress: bool = False) -> Adapted:
    """The rows to index and the projection for raw descriptors ``vectors`` of ``rows``.

    ``embedder`` makes the views' descriptors (None: no views). ValueError when the catalogue cannot give the
    asked projection (one product only; one image per product and no views)."""
    if options.projection == "none":
        return Adapted(vectors)
    if options.projection == "pca":
        projection = learn_projection(vectors, options.dims, seed=options.seed)
        return Adapted(projection[0].apply(vectors), projection)
    started = time.perf_counter()
    groups = [row.group for row in rows]
    chosen = view_rows(groups, options.views, options.seed) if embedder is not None else np.zeros(0, dtype=np.int64)
    view_vectors = view_descriptors(chosen, rows, embedder, options, progress) if len(chosen) else None
    adapted = fit_adapted(vectors, groups, chosen, view_vectors, options)
    adapted.projection[1]["seconds"] = round(time.perf_counter() - started, 2)
    return adapted


def fit_adapted(vectors: np.ndarray, groups: Sequence[str], chosen: np.ndarray, view_vectors: np.ndarray | None,
                options: AdaptOptions) -> Adapted:
    """The adapted projection from raw descriptors ``vectors`` of the catalogue's rows (products ``groups``) and
    the descriptors ``view_vectors`` (len(chosen), views, D) of the store-like views of rows ``chosen`` (None:
    no views). Pure: benchmarks refit it from descriptors extracted once."""
    samples, labels = np.asarray(vectors, dtype=np.float32), list(groups)
    if view_vectors is not None:
        samples = np.concatenate([samples, view_vectors.reshape(-1, samples.shape[1])])
        labels += [groups[row] for row in chosen for _ in range(view_vectors.shape[1])]
    sizes = Counter(groups).values()
    # within-product samples: each view, and each image of a product with several; most decide the default shrinkage
    from_views = len(samples) - len(vectors) >= sum(n for n in sizes if n > 1)
    shrinkage = options.shrinkage if options.shrinkage is not None else (
        SHRINKAGE_FROM_VIEWS if from_views else SHRINKAGE_FROM_IMAGES)
    projection, info, scatter = learn_adapted_projection(samples, labels, shrinkage, options.dims, seed=options.seed)
    averaged = view_vectors is not None and len(chosen) == sum(n == 1 for n in sizes)
    indexed = np.asarray(vectors, dtype=np.float32)
    if averaged:
        indexed = indexed.copy()
        indexed[chosen] = l2_normalize(indexed[chosen] + view_vectors.sum(axis=1))
    info.update({"views_per_image": options.views if len(chosen) else 0, "images_with_views": int(len(chosen)),
                 "view_averaged_rows": int(len(chosen)) if averaged else 0, "seed": options.seed,
                 "variation_from": "views" if from_views else "images"})
    return Adapted(projection.apply(indexed), (projection, info), scatter, indexed)


def view_descriptors(chosen: np.ndarray, rows: Sequence[CatalogRow], embedder: Embedder, options: AdaptOptions,
                      progress: bool) -> np.ndarray:
    """(len(chosen), views, D) raw SR-MAC descriptors of the store-like views of the chosen rows."""
    size = max(embedder.card.input.height, embedder.card.input.width)
    out = np.empty((len(chosen), options.views, embedder.card.feature_dim), dtype=np.float32)
    bar = _progress(len(chosen), progress)
    for i, row in enumerate(chosen):
        views = store_like_views(str(rows[row].image), options.views, size, options.seed, int(row))
        out[i] = embedder.embed(views, batch_size=16)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return out


def _progress(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc="store-like views", unit="image")
