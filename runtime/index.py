"""Visual index: approximate nearest neighbours by inner product on L2-normalised descriptors.

hnswlib keeps query latency in milliseconds at 500K items; below ``exact_below`` items the index is a
plain matrix product, which is exact and faster than a graph at that size.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import hnswlib
import numpy as np

from .errors import BundleError


@dataclass(frozen=True)
class IndexParams:
    """HNSW parameters as recorded in a bundle manifest."""

    M: int = 32
    ef_construction: int = 200
    ef: int = 128
    exact_below: int = 1000
    seed: int = 100

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


class VisualIndex:
    """Top-k search over the catalogue's descriptor matrix.

    Thread safety: ``search`` is safe to call from several threads (hnswlib queries are read-only once
    ``ef`` is set, which happens at construction); nothing here mutates after construction.
    """

    def __init__(self, vectors: np.ndarray, hnsw: hnswlib.Index | None, params: IndexParams) -> None:
        self.vectors = vectors
        self.params = params
        self._hnsw = hnsw
        if hnsw is not None:
            hnsw.set_ef(max(params.ef, 1))

    @property
    def kind(self) -> str:
        return "exact" if self._hnsw is None else "hnsw"

    def __len__(self) -> int:
        return int(self.vectors.shape[0])

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    @classmethod
    def build(cls, vectors: np.ndarray, params: IndexParams = IndexParams(), threads: int = -1) -> "VisualIndex":
        """Index ``vectors`` (rows L2-normalised); HNSW only from ``params.exact_below`` rows up."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] == 0:
            raise ValueError(f"need a non-empty (n, d) matrix, got shape {vectors.shape}")
        if len(vectors) < params.exact_below:
            return cls(vectors, None, params)
        hnsw = hnswlib.Index(space="ip", dim=vectors.shape[1])
        hnsw.init_index(
            max_elements=len(vectors), ef_construction=params.ef_construction, M=params.M, random_seed=params.seed
        )
        hnsw.add_items(vectors, np.arange(len(vectors)), num_threads=threads)
        return cls(vectors, hnsw, params)

    def save(self, index_path: Path) -> bool:
        """Write the HNSW graph to ``index_path``; returns False when the index is exact (nothing to write)."""
        if self._hnsw is None:
            return False
        self._hnsw.save_index(str(index_path))
        return True

    @classmethod
    def load(cls, vectors: np.ndarray, index_path: Path | None, params: IndexParams) -> "VisualIndex":
        """Reopen an index over ``vectors``; ``index_path`` None means exact search."""
        if index_path is None:
            return cls(vectors, None, params)
        hnsw = hnswlib.Index(space="ip", dim=vectors.shape[1])
        try:
            hnsw.load_index(str(index_path), max_elements=len(vectors))
        except (RuntimeError, ValueError) as exc:
            raise BundleError(f"{index_path.name}: cannot load the HNSW index ({exc})") from None
        if hnsw.get_current_count() != len(vectors):
            raise BundleError(
                f"{index_path.name}: holds {hnsw.get_current_count()} items but vectors.npy has {len(vectors)}"
            )
        # A graph of another dimension loads without complaint and reads memory wrongly: compare one item.
        if not np.allclose(hnsw.get_items([0])[0], vectors[0], atol=1e-5):
            raise BundleError(f"{index_path.name}: does not index the vectors of vectors.npy")
        return cls(vectors, hnsw, params)

    def search(self, queries: np.ndarray, top: int) -> tuple[np.ndarray, np.ndarray]:
        """Best ``top`` rows per query: (ids int64 (N, t), scores float32 (N, t)), best first; t = min(top, n)."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if queries.shape[1] != self.dim:
            raise ValueError(f"query dimension {queries.shape[1]} != index dimension {self.dim}")
        top = min(top, len(self))
        if self._hnsw is not None:
            labels, distances = self._hnsw.knn_query(queries, k=top)
            return labels.astype(np.int64), (1.0 - distances).astype(np.float32)
        scores = queries @ self.vectors.T
        part = np.argpartition(-scores, top - 1, axis=1)[:, :top]
        order = np.take_along_axis(scores, part, axis=1).argsort(axis=1)[:, ::-1]
        ids = np.take_along_axis(part, order, axis=1)
        return ids.astype(np.int64), np.take_along_axis(scores, ids, axis=1).astype(np.float32)
