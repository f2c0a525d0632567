"""The public Python API: open a bundle, ask with a photo, get the 7 best catalogue products."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Sequence

import numpy as np

from .backends import Backend, open_backend
from .bundle import Bundle, open_bundle
from .describe.embedder import Embedder
from .describe.image import ImageSource
from .search.two_stage import Hit, two_stage_search


@dataclass(frozen=True)
class Match:
    """One result: the catalogue item, its similarity to the photo, and which stage found it
    ("visual": the first-stage top-k; "text": the text-refined second stage)."""

    id: str
    title: str
    score: float
    stage: str
    group: str
    image: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Retriever:
    """A loaded bundle plus an inference backend.

    Thread safety: ``query``, ``query_batch`` and ``search`` may run from several threads at once (the
    bundle is read-only; ONNX Runtime sessions are thread-safe, and the TensorRT backend gives each thread its
    own execution context and stream); ``close`` must come last.
    """

    def __init__(self, bundle: Bundle, backend: Backend) -> None:
        self.bundle = bundle
        self.backend = backend
        self.embedder = Embedder(backend, bundle.card, bundle.levels, projection=bundle.projection)

    @classmethod
    def open(
        cls, path: str | Path, *, backend: str | None = None, threads: int | None = None, verify: bool = True
    ) -> "Retriever":
        """Open and verify a bundle, then load its visual model with ``backend`` ("auto", "tensorrt",
        "onnxruntime"; default: the bundle's choice). "auto" runs one of the bundle's TensorRT plans when
        one fits this GPU and library, else ONNX Runtime (the reason is logged to the "shadematch" logger)."""
        bundle = open_bundle(path, verify=verify)
        return cls(bundle, open_backend(bundle.model_path, backend or bundle.backend, threads=threads))

    def query(self, image: ImageSource, *, k: int | None = None, top: int | None = None,
              distinct: bool = True) -> list[Match]:
        """The best ``top`` (default 7) products for one photo, each by its best catalogue image (``distinct``
        False: the best ``top`` catalogue images, several of one product allowed)."""
        return self.query_batch([image], k=k, top=top, distinct=distinct)[0]

    def query_batch(
        self, images: Sequence[ImageSource], *, k: int | None = None, top: int | None = None, batch_size: int = 16,
        distinct: bool = True,
    ) -> list[list[Match]]:
        """Results for several photos, run through the model in batches."""
        return self.search(self.embed(images, batch_size=batch_size), k=k, top=top, distinct=distinct)

    def embed(self, images: Sequence[ImageSource], batch_size: int = 16) -> np.ndarray:
        """SR-MAC descriptors (N, D) of photos, as stored in the bundle's index (projected if it has a projection)."""
        return self.embedder.embed(images, batch_size=batch_size)

    def search(self, descriptors: np.ndarray, *, k: int | None = None, top: int | None = None,
               vote: int | None = None, distinct: bool = True) -> list[list[Match]]:
        """Two-stage search (Algorithm 1) for precomputed descriptors; k = 0 is visual-only. ``vote`` (default:
        the bundle's) is the visual top-m whose product vote picks the first result (0 = off). ``distinct``: one
        result per product (its first image in the ranking), else the image-level ranking of the challenge."""
        k = self.bundle.k if k is None else k
        top = self.bundle.top if top is None else top
        vote = self.bundle.vote if vote is None else vote
        if k < 0 or top < 1 or vote < 0:
            raise ValueError(f"need k >= 0, top >= 1 and vote >= 0, got k={k}, top={top}, vote={vote}")
        hits = two_stage_search(descriptors, self.bundle.index, self.bundle.text_map, k=k, top=top, vote=vote,
                                products=self.bundle.products if vote > 1 or distinct else None, distinct=distinct)
        return [[self._match(hit) for hit in row] for row in hits]

    def _match(self, hit: Hit) -> Match:
        item = self.bundle.catalog[hit.row]
        return Match(item.id, item.title, hit.score, hit.stage, item.group, item.image)

    def close(self) -> None:
        """Release the backend; idempotent."""
        self.backend.close()

    def __enter__(self) -> "Retriever":
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
