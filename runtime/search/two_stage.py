"""Two-stage search, Algorithm 1 of Hou, Ji and Wang (ACM Multimedia 2020): a visual top-k, then a visual search restricted to the text
neighbours of those k items, filling the rest of the result list."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable, Sequence

import numpy as np

from .fusion import TextEvidence
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


def vote_by_product(visual_ids: np.ndarray, visual_scores: np.ndarray, products: Sequence[Hashable], m: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Move the best row of the product that the visual top ``m`` vote for to the front of the ranking.

    Each of the top m rows votes for its product (``products[row]``: the catalogue's ``group``, several images
    of one product) with its similarity; the product with the largest sum wins. Where a store's catalogue holds
    several photos per product, this k-nearest-neighbour vote picks the first result more reliably than the
    single nearest photo; where every product has one image, the winner is the visual top-1 and nothing changes.
    Only the m voters' products are looked up, so a lazily parsed 500K-row catalogue costs m lookups.
    """
    if m <= 1 or len(visual_ids) < 2:
        return visual_ids, visual_scores
    voters = [products[int(row)] for row in visual_ids[:m]]
    totals: dict[Hashable, float] = {}
    for product, score in zip(voters, visual_scores[:m]):
        totals[product] = totals.get(product, 0.0) + float(score)
    first = voters.index(max(totals, key=totals.__getitem__))  # ties: the product seen first
    order = np.r_[first, np.delete(np.arange(len(visual_ids)), first)]
    return visual_ids[order], visual_scores[order]


def two_stage_search(
    queries: np.ndarray, index: VisualIndex, text_map: TextNeighbours, k: int, top: int = 7,
    vote: int = 0, products: Sequence[Hashable] | None = None, distinct: bool = False,
    evidence: Sequence[TextEvidence | None] | None = None,
) -> list[list[Hit]]:
    """Algorithm 1 for a batch of descriptors (N, D); k = 0 gives the visual ranking alone.

    ``evidence`` (one per query, None where nothing was read) fuses the words read on each photo into its visual
    ranking first (`TextEvidence.apply`). With ``vote`` = m > 1 and ``products`` (the product of each catalogue
    row, by row), the ranking is then reordered by `vote_by_product` over its top m. ``distinct`` (needs
    ``products``) returns ``top`` different products, each by its first row in that ranking
    (`distinct_products`), instead of ``top`` rows.
    """
    if (vote > 1 or distinct) and products is None:
        raise ValueError("vote and distinct need the product code of every catalogue row")
    if evidence is not None and len(evidence) != len(queries):
        raise ValueError(f"need one text evidence per query, got {len(evidence)} for {len(queries)} queries")
    if not distinct:
        ids, scores = index.search(queries, max(top, k, vote))
        return refine_batch(queries, ids, scores, index, text_map, k, top, vote, products, evidence)
    ids, scores = index.search(queries, distinct_pool(top, k, vote))  # one search for the batch, as above
    return [distinct_products(query, index, text_map, k, top, vote, products, (ids[i], scores[i]),
                              evidence[i] if evidence is not None else None)
            for i, query in enumerate(queries)]


#: Rows searched per product asked for, at first, when results must be distinct products; doubled until enough.
DISTINCT_POOL = 16
#: Rows searched at most per query for distinct products (a catalogue with hundreds of images of a few products
#: then returns fewer than ``top`` products rather than searching without end).
DISTINCT_POOL_MAX = 4096


def distinct_pool(top: int, k: int, vote: int) -> int:
    """Rows a distinct-products search asks the index for at first."""
    return max(top * DISTINCT_POOL, k, vote)


def distinct_products(query: np.ndarray, index: VisualIndex, text_map: TextNeighbours, k: int, top: int, vote: int,
                      products: Sequence[Hashable], first: tuple[np.ndarray, np.ndarray] | None = None,
                      evidence: TextEvidence | None = None) -> list[Hit]:
    """The ranking of one query (vote, then Algorithm 1) cut to its first row of each product, ``top`` products.

    A shopper wants seven different products, not one carton seven times; where the catalogue holds many images of
    one product, the rows searched grow (doubling from `distinct_pool`) until ``top`` products appear, the
    catalogue is exhausted, or DISTINCT_POOL_MAX rows were searched. ``first``: the index's answer (ids, scores)
    for the first `distinct_pool` rows, when the caller already has it (`shadematch bench` times it apart)."""
    pool = distinct_pool(top, k, vote)
    while True:
        pool = min(pool, len(index))
        ids, scores = (first[0][None], first[1][None]) if first is not None else index.search(query[None], pool)
        first = None
        hits = refine_batch(query[None], ids, scores, index, text_map, k, pool, vote, products, [evidence])[0]
        seen: set[Hashable] = set()
        firsts = []
        for hit in hits:
            product = products[hit.row]
            if product not in seen:
                seen.add(product)
                firsts.append(hit)
                if len(firsts) == top:
                    return firsts
        if pool >= min(len(index), DISTINCT_POOL_MAX):
            return firsts
        pool *= 2


def refine_batch(
    queries: np.ndarray, ids: np.ndarray, scores: np.ndarray, index: VisualIndex, text_map: TextNeighbours,
    k: int, top: int = 7, vote: int = 0, products: Sequence[Hashable] | None = None,
    evidence: Sequence[TextEvidence | None] | None = None,
) -> list[list[Hit]]:
    """Text fusion, the product vote and the second stage for a batch whose visual rankings (``index.search``)
    are known; split out so that `shadematch bench` times the index search and the refinement apart."""
    results = []
    for i in range(len(queries)):
        row_ids, row_scores = ids[i], scores[i]
        if evidence is not None and evidence[i] is not None:
            row_ids, row_scores = evidence[i].apply(queries[i], row_ids, row_scores, index.vectors)
        if k == 0:
            results.append([Hit(int(r), float(s), VISUAL) for r, s in zip(row_ids[:top], row_scores[:top])])
            continue
        if vote > 1:
            row_ids, row_scores = vote_by_product(row_ids, row_scores, products, vote)
        results.append(refine(queries[i], row_ids, row_scores, index.vectors, text_map, k, top))
    return results
