"""Photo -> descriptor: decode, prepare per the model card, run the visual model, SR-MAC pool.

Shared by query time (Retriever) and catalogue indexing (export), so both sides of a search see
descriptors made the same way.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from ..backends import Backend
from ..errors import BackendError, ImageError
from PIL import Image

from .image import DEFAULT_MAX_PIXELS, ImageSource, load_image, prepare
from .modelcard import ModelCard
from .pooling import srmac
from .projection import Projection


class Embedder:
    """Descriptors from a visual model whose outputs follow the X / S contract. Thread-safe if the backend is.

    ``projection`` (a bundle's PCA) maps the SR-MAC descriptors into the bundle's index space; catalogue
    indexing leaves it out, since the projection is learned from those very descriptors."""

    def __init__(self, backend: Backend, card: ModelCard, levels: int, max_pixels: int = DEFAULT_MAX_PIXELS,
                 projection: Projection | None = None) -> None:
        self.backend = backend
        self.card = card
        self.levels = levels
        self.max_pixels = max_pixels
        self.projection = projection
        for role in ("features", "saliency"):
            name = card.outputs.get(role)
            if name not in backend.output_names:
                raise BackendError(
                    f"model card names {role} output {name!r}, the model has {backend.output_names}"
                )

    # The stages below are what `prepare` and `embed_batch` chain; `shadematch bench` times them one by one.

    def decode(self, source: ImageSource) -> Image.Image:
        """Stage 1: the photo as an RGB image, decoded no larger than the model needs."""
        spec = self.card.input
        return load_image(source, min_size=max(spec.height, spec.width), max_pixels=self.max_pixels)

    def preprocess(self, image: Image.Image) -> np.ndarray:
        """Stage 2: resize and normalise per the card, (3, H, W)."""
        return prepare(image, self.card.input)

    def run_model(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Stage 3: the visual model's outputs for a prepared batch (N, 3, H, W)."""
        return self.backend.run({self.card.input.name: batch})

    @property
    def dim(self) -> int:
        """Length of the descriptors this embedder returns."""
        return self.projection.out_dim if self.projection is not None else self.card.feature_dim

    def pool(self, outputs: dict[str, np.ndarray]) -> np.ndarray:
        """Stage 4: SR-MAC descriptors (N, D) from the model's X and S (eqs. 4-7), projected when a bundle says so."""
        pooled = srmac(outputs[self.card.outputs["features"]], outputs[self.card.outputs["saliency"]], self.levels)
        return pooled if self.projection is None else self.projection.apply(pooled)

    def prepare(self, source: ImageSource) -> np.ndarray:
        """One model input (3, H, W) from a photo."""
        return self.preprocess(self.decode(source))

    def embed_batch(self, batch: np.ndarray) -> np.ndarray:
        """Descriptors (N, D) of a prepared batch (N, 3, H, W)."""
        return self.pool(self.run_model(batch))

    def embed(self, sources: Sequence[ImageSource], batch_size: int = 16) -> np.ndarray:
        """Descriptors of several photos; an unusable photo raises ImageError naming its position."""
        chunks = []
        for start in range(0, len(sources), batch_size):
            prepared = []
            for offset, source in enumerate(sources[start : start + batch_size]):
                try:
                    prepared.append(self.prepare(source))
                except ImageError as exc:
                    # Same kind (too large, unsupported, ...) so callers can still tell the cases apart.
                    raise type(exc)(f"image {start + offset + 1} of {len(sources)}: {exc}") from None
            chunks.append(self.embed_batch(np.stack(prepared)))
        if not chunks:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.concatenate(chunks)
