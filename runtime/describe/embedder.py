"""Photo -> descriptor: decode, prepare per the model card, run the visual model, SR-MAC pool.

Shared by query time (Retriever) and catalogue indexing (export), so both sides of a search see
descriptors made the same way.
"""
from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence

import numpy as np
from ..backends import Backend
from ..errors import BackendError, ImageError, at_position
from PIL import Image

from .image import DEFAULT_MAX_PIXELS, ImageSource, load_image, prepare
from .modelcard import ModelCard
from .pooling import srmac
from .projection import Projection
from .views import QueryViews


#: Photos per model run when several photos are described on parallel single-thread runs (`workers`): on 2 cores
#: with INT8 MANet, 2 gave the most photos/s through Retriever.query_batch (184 vs 166 at 4; batch 1: 117).
PARALLEL_CHUNK = 2


class Embedder:
    """Descriptors from a visual model whose outputs follow the X / S contract. Thread-safe if the backend is.

    ``projection`` (a bundle's PCA) maps the SR-MAC descriptors into the bundle's index space; catalogue
    indexing leaves it out, since the projection is learned from those very descriptors.

    Several photos at once: with ``workers`` > 1 and ``worker_backend`` (a factory of a single-thread session of the
    same model, made on first use), ``embed`` runs chunks of PARALLEL_CHUNK photos on ``workers`` threads, each doing
    its own decoding, model run and pooling. One photo runs on ``backend`` (all threads on one model run: the
    lowest latency). Why: on 2 cores a 2-thread run of a larger batch is memory-bound and was slower per photo
    than batch 1 (FP32 MANet 77.6 vs 86.6 photos/s), while whole photos on each core scale.

    ``views`` (a bundle's query views, runtime.describe.views): each photo is ``views.count`` consecutive model
    inputs (`inputs`), pooled into one descriptor; catalogue indexing leaves it out (one view per image)."""

    def __init__(self, backend: Backend, card: ModelCard, levels: int, max_pixels: int = DEFAULT_MAX_PIXELS,
                 projection: Projection | None = None, workers: int = 1,
                 worker_backend: Callable[[], Backend] | None = None, views: QueryViews | None = None) -> None:
        self.backend = backend
        self.card = card
        self.levels = levels
        self.max_pixels = max_pixels
        self.projection = projection
        self.views = views
        self.workers = workers
        self._make_worker_backend = worker_backend
        self._worker_backend: Backend | None = None
        self._lock = threading.Lock()
        for role in ("features", "saliency"):
            name = card.outputs.get(role)
            if name not in backend.output_names:
                raise BackendError(
                    f"model card names {role} output {name!r}, the model has {backend.output_names}"
                )

    # The stages below are what `prepare` and `embed_batch` chain; `shadematch bench` times them one by one.

    @property
    def decode_side(self) -> int:
        """The shorter side a photo keeps when decoded: the model's input side, or more where the closest query
        zoom must still fill the input with the photo's own pixels."""
        side = max(self.card.input.height, self.card.input.width)
        return side if self.views is None else math.ceil(side / min(self.views.zooms))

    def decode(self, source: ImageSource) -> Image.Image:
        """Stage 1: the photo as an RGB image, decoded no larger than the model needs."""
        return load_image(source, min_size=self.decode_side, max_pixels=self.max_pixels)

    def preprocess(self, image: Image.Image) -> np.ndarray:
        """Stage 2: resize and normalise per the card, (3, H, W)."""
        return prepare(image, self.card.input)

    @property
    def views_per_photo(self) -> int:
        """Model inputs per photo: 1, or the query views' count."""
        return self.views.count if self.views is not None else 1

    def inputs(self, image: Image.Image) -> np.ndarray:
        """Stage 2 for a photo: its model inputs (views_per_photo, 3, H, W), its own crop first."""
        crops = self.views.crops(image) if self.views is not None else [image]
        return np.stack([self.preprocess(crop) for crop in crops])

    def run_model(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Stage 3: the visual model's outputs for a prepared batch (N, 3, H, W)."""
        return self.backend.run({self.card.input.name: batch})

    @property
    def dim(self) -> int:
        """Length of the descriptors this embedder returns."""
        return self.projection.out_dim if self.projection is not None else self.card.feature_dim

    def pool(self, outputs: dict[str, np.ndarray]) -> np.ndarray:
        """Stage 4: SR-MAC descriptors (N, D) from the model's X and S (eqs. 4-7), one per photo (its views summed,
        runtime.describe.views), projected when a bundle says so."""
        pooled = srmac(outputs[self.card.outputs["features"]], outputs[self.card.outputs["saliency"]], self.levels)
        if self.views is not None:
            pooled = self.views.combine(pooled)
        return pooled if self.projection is None else self.projection.apply(pooled)

    def prepare(self, source: ImageSource) -> np.ndarray:
        """One model input (3, H, W) from a photo."""
        return self.preprocess(self.decode(source))

    def embed_batch(self, batch: np.ndarray) -> np.ndarray:
        """Descriptors (N, D) of a prepared batch (N, 3, H, W)."""
        return self.pool(self.run_model(batch))

    def photos_per_run(self, batch_size: int) -> int:
        """Photos per model run for a ``batch_size`` of model inputs: query views count each photo's inputs, so a
        batch's activations (and the process's peak memory) stay what ``batch_size`` asks for."""
        return max(1, batch_size // self.views_per_photo)

    def embed(self, sources: Sequence[ImageSource], batch_size: int = 16) -> np.ndarray:
        """Descriptors of several photos (``batch_size`` model inputs per run); an unusable photo raises ImageError
        naming its position."""
        if len(sources) > 1 and self.workers > 1 and self._make_worker_backend is not None:
            backend = self._parallel_backend()
            with ThreadPoolExecutor(self.workers, thread_name_prefix="embed") as pool:
                chunks = list(pool.map(lambda start: self._describe(backend, sources, start, start + PARALLEL_CHUNK),
                                       range(0, len(sources), PARALLEL_CHUNK)))
        else:
            step = self.photos_per_run(batch_size)
            chunks = [self.embed_batch(self._prepared(sources, start, start + step))
                      for start in range(0, len(sources), step)]
        if not chunks:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.concatenate(chunks)

    def _describe(self, backend: Backend, sources: Sequence[ImageSource], start: int, stop: int) -> np.ndarray:
        """Descriptors of sources[start:stop], run on ``backend`` (one worker's chunk)."""
        return self.pool(backend.run({self.card.input.name: self._prepared(sources, start, stop)}))

    def _prepared(self, sources: Sequence[ImageSource], start: int, stop: int) -> np.ndarray:
        """Model inputs (n * views_per_photo, 3, H, W) of sources[start:stop]."""
        prepared = []
        for offset, source in enumerate(sources[start:stop]):
            try:
                prepared.append(self.inputs(self.decode(source)))
            except ImageError as exc:
                raise at_position(exc, start + offset, len(sources)) from None
        return np.concatenate(prepared)

    def _parallel_backend(self) -> Backend:
        with self._lock:
            if self._worker_backend is None:
                self._worker_backend = self._make_worker_backend()  # type: ignore[misc]
            return self._worker_backend

    def close(self) -> None:
        """Release the single-thread session of parallel runs, if one was made (``backend`` is the caller's)."""
        with self._lock:
            if self._worker_backend is not None:
                self._worker_backend.close()
                self._worker_backend = None
