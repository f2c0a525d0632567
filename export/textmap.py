"""The textual index of seed 000 (eqs. 1-2): TF-IDF vectors of catalogue titles, cosine neighbours.

Neighbours are found chunk by chunk with sparse products (rows x titles), never a dense N x N matrix,
so the memory stays bounded by the chunk while the catalogue grows to 500K titles.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from runtime.textmap import TextNeighbours


@dataclass(frozen=True)
class TextMapParams:
    """How the map was made, recorded in the manifest."""

    top_n: int = 50
    threshold: float = 0.3
    chunk_rows: int = 2048
    # Single characters count: shade numbers and sizes ("No. 5", "3 %") are what tell products apart.
    token_pattern: str = r"(?u)\b\w+\b"
    sublinear_tf: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_text_map(titles: Sequence[str], params: TextMapParams = TextMapParams()) -> TextNeighbours:
    """For each title, up to ``top_n`` other titles with cosine similarity >= ``threshold``, best first."""
    vectorizer = TfidfVectorizer(
        token_pattern=params.token_pattern, sublinear_tf=params.sublinear_tf, strip_accents="unicode", dtype=np.float32
    )
    try:
        tfidf = vectorizer.fit_transform(titles).tocsr()  # rows are L2-normalised: products are cosines (eq. 2)
    except ValueError:  # every title empty or stop words only: no text to link by
        return TextNeighbours(np.zeros(len(titles) + 1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.float32))
    transposed = tfidf.T.tocsr()
    indptr = [0]
    indices: list[np.ndarray] = []
    sims: list[np.ndarray] = []
    for start in range(0, tfidf.shape[0], params.chunk_rows):
        block = (tfidf[start : start + params.chunk_rows] @ transposed).tocsr()
        for offset in range(block.shape[0]):
            lo, hi = block.indptr[offset], block.indptr[offset + 1]
            cols, vals = block.indices[lo:hi], block.data[lo:hi]
            keep = (vals >= params.threshold) & (cols != start + offset)
            cols, vals = cols[keep], vals[keep]
            order = np.lexsort((cols, -vals))[: params.top_n]  # best first; ties by row, so maps reproduce
            indices.append(cols[order].astype(np.int32))
            sims.append(vals[order].astype(np.float32))
            indptr.append(indptr[-1] + len(order))
    return TextNeighbours(
        np.asarray(indptr, dtype=np.int64),
        np.concatenate(indices) if indices else np.zeros(0, np.int32),
        np.concatenate(sims) if sims else np.zeros(0, np.float32),
    )
