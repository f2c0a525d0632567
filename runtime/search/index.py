"""Visual index: approximate nearest neighbours by inner product on L2-normalised descriptors.

hnswlib keeps query latency in milliseconds at 500K items; below ``exact_below`` items the index is a
plain matrix product, which is exact and faster than a graph at that size.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import hnswlib
import numpy as np

from ..errors import BundleError
from .hnsw_file import IndexFileError, check_hnsw_file


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


#: Rows checked at a time by `first_bad_row` (bounds the temporary copy at 500K x 1280).
_CHECK_ROWS = 65_536
#: How far a stored descriptor's length may stray from 1 (float32 rounding of a normalised row is ~1e-7).
UNIT_TOLERANCE = 1e-3


def first_bad_row(vectors: np.ndarray) -> int | None:
    """The first row that is not a finite unit vector, or None. Why: one NaN row makes every similarity NaN
    (hnswlib's graph walk and the exact argsort then return garbage for every query), and a row far from unit
    length outranks everything; such a row is refused at build and at open."""
    for start in range(0, len(vectors), _CHECK_ROWS):
        chunk = np.asarray(vectors[start:start + _CHECK_ROWS], dtype=np.float32)
        norms = np.sqrt(np.einsum("ij,ij->i", chunk, chunk))
        bad = np.flatnonzero(~(np.abs(norms - 1.0) <= UNIT_TOLERANCE))  # NaN compares False: caught too
        if bad.size:
            return start + int(bad[0])
    return None


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
        bad = first_bad_row(vectors)
        if bad is not None:
            raise ValueError(f"descriptor row {bad} is not a finite unit vector")
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
        bad = first_bad_row(vectors)
        if bad is not None:
            raise BundleError(f"vectors.npy: row {bad} is not a finite unit vector (NaN, infinite or not normalised)")
        if index_path is None:
            return cls(vectors, None, params)
        try:
            check_hnsw_file(index_path, len(vectors), vectors.shape[1])  # hnswlib itself would crash on a bad file
        except (IndexFileError, OSError) as exc:
            raise BundleError(f"{exc}") from None
        hnsw = hnswlib.Index(space="ip", dim=vectors.shape[1])
        try:
            hnsw.load_index(str(index_path), max_elements=len(vectors))
        except (RuntimeError, ValueError) as exc:
            raise BundleError(f"{index_path.name}: cannot load the HNSW index ({exc})") from None
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
