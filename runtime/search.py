"""Two-stage search, seed 000 Algorithm 1: a visual top-k, then a visual search restricted to the text
neighbours of those k items, filling the rest of the result list."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .index import VisualIndex
from .textmap import TextNeighbours

VISUAL, TEXT = "visual", "text"


@dataclass(frozen=True)
class Hit:
    """One result row: catalogue row, similarity to the query, and the stage that found it."""

    row: int
    score: float
    stage: str


def refine(
    query: np.ndarray,
    visual_ids: np.ndarray,
    visual_scores: np.ndarray,
    vectors: np.ndarray,
    text_map: TextNeighbours,
    k: int,
    top: int = 7,
) -> list[Hit]:
    """Algorithm 1 for one query, given its visual ranking (best first).

    The first k results are the visual top-k; the rest are the best of the text neighbours of those k
    (I_subset), ranked by visual similarity, skipping rows already output. If the subset runs short, the
    visual ranking fills the remaining places so a query always gets ``top`` results when it can.
    """
    k = min(k, top)
    hits = [Hit(int(r), float(s), VISUAL) for r, s in zip(visual_ids[:k], visual_scores[:k])]
    taken = {h.row for h in hits}
    # I_subset: every text neighbour of the visual top-k, in order, once, minus rows already output.
    subset = [
        row
        for row in dict.fromkeys(int(n) for r in visual_ids[:k] for n in text_map.neighbours(int(r)))
        if row not in taken
    ]
    if subset and len(hits) < top:
        ids = np.asarray(subset, dtype=np.int64)
        scores = vectors[ids] @ query  # findFeaturesByIDs, then argsortSimilaritiesDscd
        for j in np.argsort(-scores, kind="stable")[: top - len(hits)]:
            hits.append(Hit(int(ids[j]), float(scores[j]), TEXT))
            taken.add(int(ids[j]))
    for r, s in zip(visual_ids[k:], visual_scores[k:]):
        if len(hits) >= top:
            break
        if int(r) not in taken:
            hits.append(Hit(int(r), float(s), VISUAL))
            taken.add(int(r))
    return hits


def two_stage_search(
    queries: np.ndarray, index: VisualIndex, text_map: TextNeighbours, k: int, top: int = 7
) -> list[list[Hit]]:
    """Algorithm 1 for a batch of descriptors (N, D); k = 0 gives the visual ranking alone."""
    ids, scores = index.search(queries, max(top, k))
    return refine_batch(queries, ids, scores, index, text_map, k, top)


def refine_batch(
    queries: np.ndarray, ids: np.ndarray, scores: np.ndarray, index: VisualIndex, text_map: TextNeighbours,
    k: int, top: int = 7,
) -> list[list[Hit]]:
    """The second stage for a batch whose visual rankings (``index.search``) are known; split out so that
    `shadematch bench` times the index search and the refinement apart."""
    return [
        refine(queries[i], ids[i], scores[i], index.vectors, text_map, k, top) if k > 0
        else [Hit(int(r), float(s), VISUAL) for r, s in zip(ids[i][:top], scores[i][:top])]
        for i in range(len(queries))
    ]
