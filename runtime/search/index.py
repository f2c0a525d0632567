"""Visual index: approximate nearest neighbours by inner product on L2-normalised descriptors.

hnswlib keeps query latency in milliseconds at 500K items; below ``exact_below`` items the index is a
plain matrix product, which is exact and faster than a graph at that size.

A graph built once labels its items by catalogue row. A catalogue update (export.bundle.update) extends the graph
instead of rebuilding it: removed rows are marked deleted in the graph (hnswlib never returns them again) and the
rows move up to close the gap, so the graph's labels then map to rows through ``label_rows`` (-1: deleted),
stored beside the graph (`index_rows.npy`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import hnswlib
import numpy as np

from ..errors import BundleError
from ..memory import release_rows
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
#: Rows copied at a time by `VisualIndex.updated` (a 42 MB temporary at 1280 dims, beside the new matrix).
_COPY_ROWS = 8_192
#: How far a stored descriptor's length may stray from 1 (float32 rounding of a normalised row is ~1e-7).
UNIT_TOLERANCE = 1e-3
#: An update rebuilds the graph from the vectors instead of extending it when more than this share of the graph's
#: items would be deleted ones: they still cost memory and graph walks (benchmarks/update/README.md).
REBUILD_DELETED_SHARE = 0.25


def first_bad_row(vectors: np.ndarray) -> int | None:
    """The first row that is not a finite unit vector, or None. Why: one NaN row makes every similarity NaN
    (hnswlib's graph walk and the exact argsort then return garbage for every query), and a row far from unit
    length outranks everything; such a row is refused at build and at open. Rows of a memory-mapped file are let
    go once checked (`release_rows`): an HNSW bundle never reads them again at query time."""
    for start in range(0, len(vectors), _CHECK_ROWS):
        chunk = np.asarray(vectors[start:start + _CHECK_ROWS], dtype=np.float32)
        norms = np.sqrt(np.einsum("ij,ij->i", chunk, chunk))
        release_rows(vectors, start, start + _CHECK_ROWS)
        bad = np.flatnonzero(~(np.abs(norms - 1.0) <= UNIT_TOLERANCE))  # NaN compares False: caught too
        if bad.size:
            return start + int(bad[0])
    return None


class VisualIndex:
    """Top-k search over the catalogue's descriptor matrix.

    Thread safety: ``search`` is safe to call from several threads (hnswlib queries are read-only once
    ``ef`` is set, which happens at construction); nothing here mutates after construction.
    """

    def __init__(self, vectors: np.ndarray, hnsw: hnswlib.Index | None, params: IndexParams,
                 label_rows: np.ndarray | None = None) -> None:
        self.vectors = vectors
        self.params = params
        self._hnsw = hnsw
        #: The catalogue row of each graph label, -1 for deleted ones; None: label = row (a graph never updated).
        self.label_rows = label_rows
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

    @property
    def deleted(self) -> int:
        """Items of the graph marked deleted by updates (0 for a graph built at once, or an exact index)."""
        return 0 if self.label_rows is None else int(np.count_nonzero(self.label_rows < 0))

    def save(self, index_path: Path, rows_path: Path | None = None) -> bool:
        """Write the HNSW graph to ``index_path`` (and, after an update, its labels' rows to ``rows_path``, which
        must then be given); returns False when the index is exact (nothing to write)."""
        if self._hnsw is None:
            return False
        if self.label_rows is not None:
            if rows_path is None:
                raise ValueError("an updated graph needs a path for its labels' rows")
            with open(rows_path, "wb") as handle:
                np.save(handle, self.label_rows.astype(np.int64), allow_pickle=False)
        self._hnsw.save_index(str(index_path))
        return True

    @classmethod
    def load(cls, vectors: np.ndarray, index_path: Path | None, params: IndexParams,
             rows_path: Path | None = None) -> "VisualIndex":
        """Reopen an index over ``vectors``; ``index_path`` None means exact search; ``rows_path``: the labels'
        rows of an updated graph (`index_rows.npy`)."""
        bad = first_bad_row(vectors)
        if bad is not None:
            raise BundleError(f"vectors.npy: row {bad} is not a finite unit vector (NaN, infinite or not normalised)")
        if index_path is None:
            return cls(vectors, None, params)
        label_rows = _load_label_rows(rows_path, len(vectors)) if rows_path is not None else None
        labels = len(label_rows) if label_rows is not None else len(vectors)
        try:
            check_hnsw_file(index_path, labels, vectors.shape[1])  # hnswlib itself would crash on a bad file
        except (IndexFileError, OSError) as exc:
            raise BundleError(f"{exc}") from None
        hnsw = hnswlib.Index(space="ip", dim=vectors.shape[1])
        try:
            hnsw.load_index(str(index_path), max_elements=labels)
        except (RuntimeError, ValueError) as exc:
            raise BundleError(f"{index_path.name}: cannot load the HNSW index ({exc})") from None
        # A graph of another dimension loads without complaint and reads memory wrongly: compare one live item.
        label = int(np.flatnonzero(label_rows >= 0)[0]) if label_rows is not None else 0
        row = int(label_rows[label]) if label_rows is not None else 0
        if not np.allclose(hnsw.get_items([label])[0], vectors[row], atol=1e-5):
            raise BundleError(f"{index_path.name}: does not index the vectors of vectors.npy")
        return cls(vectors, hnsw, params, label_rows)

    def updated(self, keep: np.ndarray, added: np.ndarray, threads: int = -1) -> "VisualIndex":
        """The index of rows ``self.vectors[keep]`` (old rows, in their new order) followed by ``added``.

        An HNSW graph is extended in place (the old index must not serve queries afterwards): the dropped rows'
        labels are marked deleted, the added vectors join under new labels, ``label_rows`` follows the rows. It
        is rebuilt from the vectors instead when the result is below ``exact_below`` rows or more than
        REBUILD_DELETED_SHARE of its items would be deleted ones."""
        keep = np.asarray(keep, dtype=np.int64)
        added = np.ascontiguousarray(added, dtype=np.float32).reshape(-1, self.dim)
        bad = first_bad_row(added)
        if bad is not None:
            raise ValueError(f"added descriptor row {bad} is not a finite unit vector")
        vectors = np.empty((len(keep) + len(added), self.dim), dtype=np.float32)
        for start in range(0, len(keep), _COPY_ROWS):  # in chunks, letting go of the old rows as they are copied
            rows = keep[start:start + _COPY_ROWS]
            vectors[start:start + len(rows)] = self.vectors[rows]
            if len(rows):
                release_rows(self.vectors, int(rows.min()), int(rows.max()) + 1)
        vectors[len(keep):] = added
        old_labels = self.label_rows if self.label_rows is not None else np.arange(len(self), dtype=np.int64)
        graph_items = len(old_labels) + len(added)
        if self._hnsw is None or len(vectors) < self.params.exact_below or \
                graph_items - len(vectors) > REBUILD_DELETED_SHARE * graph_items:
            return VisualIndex.build(vectors, self.params, threads=threads)
        new_row = np.full(len(self), -1, dtype=np.int64)
        new_row[keep] = np.arange(len(keep))
        live = old_labels >= 0
        label_rows = np.full(graph_items, -1, dtype=np.int64)
        label_rows[np.flatnonzero(live)] = new_row[old_labels[live]]
        label_rows[len(old_labels):] = np.arange(len(keep), len(vectors))
        for label in np.flatnonzero(live & (label_rows[: len(old_labels)] < 0)):
            self._hnsw.mark_deleted(int(label))
        if len(added):
            self._hnsw.resize_index(graph_items)
            self._hnsw.add_items(added, np.arange(len(old_labels), graph_items), num_threads=threads)
        return VisualIndex(vectors, self._hnsw, self.params, label_rows)

    def search(self, queries: np.ndarray, top: int) -> tuple[np.ndarray, np.ndarray]:
        """Best ``top`` rows per query: (ids int64 (N, t), scores float32 (N, t)), best first; t = min(top, n)."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if queries.shape[1] != self.dim:
            raise ValueError(f"query dimension {queries.shape[1]} != index dimension {self.dim}")
        top = min(top, len(self))
        if self._hnsw is not None:
            labels, distances = self._hnsw.knn_query(queries, k=top)
            rows = labels.astype(np.int64) if self.label_rows is None else self.label_rows[labels]
            return rows, (1.0 - distances).astype(np.float32)
        scores = queries @ self.vectors.T
        part = np.argpartition(-scores, top - 1, axis=1)[:, :top]
        order = np.take_along_axis(scores, part, axis=1).argsort(axis=1)[:, ::-1]
        ids = np.take_along_axis(part, order, axis=1)
        return ids.astype(np.int64), np.take_along_axis(scores, ids, axis=1).astype(np.float32)


def _load_label_rows(path: Path, rows: int) -> np.ndarray:
    """An updated graph's labels' rows: every catalogue row exactly once, the rest -1 (deleted)."""
    try:
        label_rows = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise BundleError(f"{path.name}: not a valid array ({exc})") from None
    if label_rows.ndim != 1 or label_rows.dtype.kind != "i":
        raise BundleError(f"{path.name}: must be one integer per graph label, got {label_rows.dtype} {label_rows.shape}")
    live = np.sort(label_rows[label_rows >= 0])
    if np.any(label_rows < -1) or not np.array_equal(live, np.arange(rows)):
        raise BundleError(f"{path.name}: does not map the graph's labels onto the {rows} catalogue rows one to one")
    return label_rows.astype(np.int64)
