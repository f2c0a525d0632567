"""The textual index of Hou, Ji and Wang (ACM Multimedia 2020, eqs. 1-2): TF-IDF vectors of catalogue titles, cosine neighbours.

Neighbours are found chunk by chunk with sparse products (rows x titles), never a dense N x N matrix, so
the memory stays bounded by the chunk while the catalogue grows to 500K titles. Within a chunk everything
is vectorised (threshold mask, one lexsort by row / -similarity / column, a rank cut), and chunks run on a
thread pool: scipy's sparse product and numpy's sort release the GIL, so both cores work.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from runtime.search.textmap import TextNeighbours


@dataclass(frozen=True)
class TextMapParams:
    """How the map was made, recorded in the manifest.

    ``min_df`` / ``max_df`` prune the vocabulary as scikit-learn's TfidfVectorizer does (an int is a count
    of titles, a float a share of them). The defaults keep every token, so maps are exactly those of the
    unpruned definition; a large catalogue may set ``max_df`` to drop tokens that nearly every title has
    ("ml", "g"): they weigh little in a cosine yet dominate the cost of the sparse product (sum of df^2).
    """

    top_n: int = 50
    threshold: float = 0.3
    chunk_rows: int = 2048
    # Single characters count: shade numbers and sizes ("No. 5", "3 %") are what tell products apart.
    token_pattern: str = r"(?u)\b\w+\b"
    sublinear_tf: bool = True
    min_df: int | float = 1
    max_df: int | float = 1.0
    threads: int = 2

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def tfidf_matrix(titles: Sequence[str], params: TextMapParams) -> sp.csr_matrix | None:
    """L2-normalised TF-IDF rows (float32 CSR), so products are cosines (eq. 2); None when no title has text."""
    vectorizer = TfidfVectorizer(
        token_pattern=params.token_pattern, sublinear_tf=params.sublinear_tf, strip_accents="unicode",
        dtype=np.float32, min_df=params.min_df, max_df=params.max_df,
    )
    try:
        return vectorizer.fit_transform(titles).tocsr()
    except ValueError:  # every title empty, or every token pruned: no text to link by
        return None


def build_text_map(titles: Sequence[str], params: TextMapParams = TextMapParams()) -> TextNeighbours:
    """For each title, up to ``top_n`` other titles with cosine similarity >= ``threshold``, best first
    (ties by row index); a title is never its own neighbour."""
    tfidf = tfidf_matrix(titles, params)
    if tfidf is None:
        return TextNeighbours(np.zeros(len(titles) + 1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.float32))
    transposed = tfidf.T.tocsr()
    starts = range(0, tfidf.shape[0], params.chunk_rows)

    def chunk(start: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return _top_neighbours(tfidf[start : start + params.chunk_rows] @ transposed, start, params)

    with ThreadPoolExecutor(max_workers=max(1, params.threads)) as pool:
        parts = list(pool.map(chunk, starts))  # map keeps chunk order
    counts = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int64)
    indptr = np.zeros(len(titles) + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    return TextNeighbours(
        indptr,
        np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.int32),
        np.concatenate([p[2] for p in parts]) if parts else np.zeros(0, np.float32),
    )


def _top_neighbours(block: sp.spmatrix, start: int, params: TextMapParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(neighbour counts per row, columns, similarities) of one chunk's product, rows in order."""
    block = block.tocsr()
    n_rows = block.shape[0]
    rows = np.repeat(np.arange(n_rows, dtype=np.int64), np.diff(block.indptr))
    cols, vals = block.indices, block.data
    keep = (vals >= params.threshold) & (cols != rows + start)
    rows, cols, vals = rows[keep], cols[keep], vals[keep]
    order = np.lexsort((cols, -vals, rows))  # per row: best first, ties by column, so maps reproduce
    rows, cols, vals = rows[order], cols[order], vals[order]
    row_start = np.searchsorted(rows, np.arange(n_rows), side="left")
    rank = np.arange(len(rows)) - row_start[rows]
    kept = rank < params.top_n
    counts = np.bincount(rows[kept], minlength=n_rows).astype(np.int64)
    return counts, cols[kept].astype(np.int32), vals[kept].astype(np.float32)


#: Below this many titles an update recomputes the whole map (seconds), so it equals a rebuild's exactly; from here
#: on it links only the new titles (`update_text_map`), as a full map costs minutes (136 s at 500K titles).
FULL_MAP_BELOW = 50_000


def update_text_map(old: TextNeighbours, keep: np.ndarray, titles: Sequence[str], params: TextMapParams = TextMapParams()
                    ) -> TextNeighbours:
    """The map of a catalogue changed by an update: old rows ``keep`` (in their new order) then the added rows,
    ``titles`` being the final catalogue's, in that order.

    Incremental: the TF-IDF weights are fitted on the final titles; the added titles get their neighbours among all
    titles with them; an old title keeps its list (renumbered, removed rows dropped, similarities as computed then)
    and takes in the added titles that beat its weakest neighbour. The old titles' similarities to each other are
    not recomputed with the new IDF, and a list that lost removed neighbours is not refilled from titles that had
    been below its top-N: both drift from a rebuild as the catalogue changes, so a catalogue changed by more than a
    few percent since its last full map deserves one (`shadematch update --full-text-map`, or below FULL_MAP_BELOW
    titles always)."""
    keep = np.asarray(keep, dtype=np.int64)
    start = len(keep)
    tfidf = tfidf_matrix(titles, params)
    if tfidf is None:
        return TextNeighbours(np.zeros(len(titles) + 1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.float32))
    new_row = np.full(len(old), -1, dtype=np.int64)
    new_row[keep] = np.arange(start)
    added = tfidf[start:]
    counts, cols, vals = _top_neighbours(added @ tfidf.T.tocsr(), start, params)
    # old rows that an added title may join: similarity >= threshold
    towards = (tfidf[:start] @ added.T).tocsr()
    towards.data[towards.data < params.threshold] = 0
    towards.eliminate_zeros()
    # every kept row's old list at once: gathered in the new row order, renumbered, removed rows dropped
    lengths = np.diff(old.indptr)[keep]
    # (int32 throughout: at 500K titles and 12M links the arrays below are the update's largest transients)
    positions = np.repeat(old.indptr[keep] - (np.cumsum(lengths) - lengths), lengths) + np.arange(lengths.sum())
    rows = np.repeat(np.arange(start, dtype=np.int32), lengths)
    ids, sims = new_row[old.indices[positions]].astype(np.int32), old.similarity[positions]
    del positions
    alive = ids >= 0
    rows, ids, sims = rows[alive], ids[alive], sims[alive]
    # then the added titles joining them, and each touched row cut back to its best top_n (ties by row)
    extra_rows = np.repeat(np.arange(start, dtype=np.int32), np.diff(towards.indptr))
    rows = np.concatenate([rows, extra_rows, np.repeat(np.arange(start, len(titles), dtype=np.int32), counts)])
    ids = np.concatenate([ids, (towards.indices + start).astype(np.int32), cols.astype(np.int32)])
    sims = np.concatenate([sims, towards.data.astype(np.float32), vals.astype(np.float32)])
    order = np.lexsort((ids, -sims, rows))
    rows, ids, sims = rows[order], ids[order], sims[order]
    rank = np.arange(len(rows)) - np.searchsorted(rows, rows, side="left")
    kept = rank < params.top_n
    rows, ids, sims = rows[kept], ids[kept], sims[kept]
    indptr = np.zeros(len(titles) + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=len(titles)), out=indptr[1:])
    return TextNeighbours(indptr, ids.astype(np.int32), sims.astype(np.float32))
