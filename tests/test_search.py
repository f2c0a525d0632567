"""runtime.search.two_stage: Algorithm 1 of Hou, Ji and Wang (ACM Multimedia 2020) on hand-made catalogues where every result can be worked out."""
from __future__ import annotations

import math

import numpy as np
import pytest

from runtime.search.index import IndexParams, VisualIndex
from runtime.search.two_stage import TEXT, VISUAL, Hit, refine, two_stage_search, vote_by_product
from runtime.search.textmap import TextNeighbours

# Eight items on the unit circle at 0, 10, ..., 70 degrees; the query is at 0 degrees, so the visual
# ranking is 0, 1, 2, ..., 7 and item i scores cos(10 i degrees).
ANGLES = np.deg2rad(np.arange(8) * 10.0)
VECTORS = np.stack([np.cos(ANGLES), np.sin(ANGLES)], axis=1).astype(np.float32)
QUERY = np.array([[1.0, 0.0]], np.float32)


def score(row: int) -> float:
    return math.cos(math.radians(10 * row))


def text_map(neighbours: dict[int, list[int]], n: int = 8) -> TextNeighbours:
    indptr, indices = [0], []
    for row in range(n):
        indices.extend(neighbours.get(row, []))
        indptr.append(len(indices))
    return TextNeighbours(np.array(indptr), np.array(indices, dtype=np.int32), np.ones(len(indices), np.float32))


@pytest.fixture(scope="module")
def index() -> VisualIndex:
    built = VisualIndex.build(VECTORS, IndexParams())
    assert built.kind == "exact"
    return built


def rows(hits: list[Hit]) -> list[int]:
    return [h.row for h in hits]


def stages(hits: list[Hit]) -> list[str]:
    return [h.stage for h in hits]


def test_visual_ranking_of_the_fixture(index: VisualIndex) -> None:
    ids, _ = index.search(QUERY, 8)
    assert ids[0].tolist() == list(range(8))


def test_first_k_visual_then_text_neighbours_by_visual_similarity(index: VisualIndex) -> None:
    # Neighbours listed out of visual order, on purpose: the text stage must re-rank them visually.
    neighbours = text_map({0: [7, 5, 1], 1: [6, 0]})
    [hits] = two_stage_search(QUERY, index, neighbours, k=2, top=5)
    assert rows(hits) == [0, 1, 5, 6, 7]
    assert stages(hits) == [VISUAL, VISUAL, TEXT, TEXT, TEXT]
    for hit in hits:
        assert hit.score == pytest.approx(score(hit.row), abs=1e-6)


def test_text_stage_takes_only_the_best_of_the_subset(index: VisualIndex) -> None:
    neighbours = text_map({0: [7, 6, 5, 4, 3]})
    [hits] = two_stage_search(QUERY, index, neighbours, k=1, top=3)
    assert rows(hits) == [0, 3, 4]
    assert stages(hits) == [VISUAL, TEXT, TEXT]


def test_text_neighbours_jump_ahead_of_better_visual_items(index: VisualIndex) -> None:
    # Visually 1..6 beat 7, but 7 is the only text neighbour of the top-1: it comes second.
    neighbours = text_map({0: [7]})
    [hits] = two_stage_search(QUERY, index, neighbours, k=1, top=4)
    assert rows(hits) == [0, 7, 1, 2]
    assert stages(hits) == [VISUAL, TEXT, VISUAL, VISUAL]


def test_neighbours_of_items_outside_the_top_k_are_ignored(index: VisualIndex) -> None:
    neighbours = text_map({2: [7, 6], 0: [5]})
    [hits] = two_stage_search(QUERY, index, neighbours, k=1, top=4)
    assert rows(hits) == [0, 5, 1, 2]  # 2's neighbours (7, 6) do not count: 2 is not in the visual top-1


def test_rows_already_output_are_skipped(index: VisualIndex) -> None:
    # 0 and 1 are text neighbours of each other and both in the visual top-2; 4 is listed by both.
    neighbours = text_map({0: [1, 4, 1], 1: [0, 4, 3]})
    [hits] = two_stage_search(QUERY, index, neighbours, k=2, top=6)
    assert rows(hits) == [0, 1, 3, 4, 2, 5]
    assert stages(hits) == [VISUAL, VISUAL, TEXT, TEXT, VISUAL, VISUAL]
    assert len(set(rows(hits))) == len(hits)


def test_short_subset_is_filled_from_the_visual_ranking(index: VisualIndex) -> None:
    neighbours = text_map({0: [6]})
    [hits] = two_stage_search(QUERY, index, neighbours, k=2, top=7)
    assert rows(hits) == [0, 1, 6, 2, 3, 4, 5]
    assert stages(hits) == [VISUAL, VISUAL, TEXT, VISUAL, VISUAL, VISUAL, VISUAL]
    assert hits[-1].score == pytest.approx(score(5), abs=1e-6)


def test_no_text_neighbours_gives_the_visual_ranking(index: VisualIndex) -> None:
    [hits] = two_stage_search(QUERY, index, text_map({}), k=3, top=7)
    assert rows(hits) == list(range(7))
    assert set(stages(hits)) == {VISUAL}


def test_k_zero_is_visual_only(index: VisualIndex) -> None:
    neighbours = text_map({0: [7, 6], 1: [5]})
    [hits] = two_stage_search(QUERY, index, neighbours, k=0, top=4)
    assert rows(hits) == [0, 1, 2, 3]
    assert set(stages(hits)) == {VISUAL}


def test_k_equal_to_top_leaves_no_room_for_text(index: VisualIndex) -> None:
    neighbours = text_map({0: [7], 1: [6], 2: [5]})
    [hits] = two_stage_search(QUERY, index, neighbours, k=3, top=3)
    assert rows(hits) == [0, 1, 2]
    assert set(stages(hits)) == {VISUAL}


def test_top_larger_than_the_catalogue(index: VisualIndex) -> None:
    neighbours = text_map({0: [7, 3]})
    [hits] = two_stage_search(QUERY, index, neighbours, k=1, top=20)
    assert rows(hits) == [0, 3, 7, 1, 2, 4, 5, 6]  # every item once, no more


def test_batch_of_queries(index: VisualIndex) -> None:
    # The second query sits at 70 degrees: its visual ranking is 7, 6, 5, ...
    queries = np.concatenate([QUERY, VECTORS[7:8]])
    neighbours = text_map({0: [4], 7: [2]})
    first, second = two_stage_search(queries, index, neighbours, k=1, top=3)
    assert rows(first) == [0, 4, 1]
    assert rows(second) == [7, 2, 6]
    assert stages(second) == [VISUAL, TEXT, VISUAL]


def test_refine_directly() -> None:
    visual_ids = np.array([0, 1, 2, 3, 4, 5, 6, 7])
    visual_scores = np.array([score(r) for r in visual_ids], np.float32)
    hits = refine(QUERY[0], visual_ids, visual_scores, VECTORS, text_map({1: [7, 5]}), k=2, top=4)
    assert rows(hits) == [0, 1, 5, 7]
    assert hits[2] == Hit(5, pytest.approx(score(5), abs=1e-6), TEXT)


@pytest.mark.parametrize("seed", range(12))
def test_random_catalogues_obey_the_invariants(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, dim = int(rng.integers(3, 40)), 6
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = VisualIndex.build(vectors)
    neighbours = {r: rng.choice(n, size=int(rng.integers(0, min(n, 6))), replace=False).tolist() for r in range(n)}
    neighbours = {r: [c for c in cs if c != r] for r, cs in neighbours.items()}
    tmap = text_map(neighbours, n)
    queries = rng.standard_normal((5, dim)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    top = int(rng.integers(1, 10))
    k = int(rng.integers(0, top + 1))
    visual_ids, _ = index.search(queries, n)
    for q, hits in enumerate(two_stage_search(queries, index, tmap, k=k, top=top)):
        ranking = visual_ids[q].tolist()
        assert len(hits) == min(top, n)  # never more than top, and full when the catalogue allows
        assert len(set(rows(hits))) == len(hits)  # never a repeat
        assert rows(hits)[:k] == ranking[:k] and stages(hits)[:k] == [VISUAL] * min(k, len(hits))
        allowed = {c for r in ranking[:k] for c in neighbours[r]}
        text_hits = [h for h in hits if h.stage == TEXT]
        assert {h.row for h in text_hits} <= allowed
        if k == 0:
            assert not text_hits
        # Text hits come right after the visual top-k, best first, and are the best of the subset.
        assert stages(hits)[k : k + len(text_hits)] == [TEXT] * len(text_hits)
        text_scores = [h.score for h in text_hits]
        assert text_scores == sorted(text_scores, reverse=True)
        subset = sorted(allowed - set(ranking[:k]), key=lambda r: -float(vectors[r] @ queries[q]))
        assert [h.row for h in text_hits] == subset[: len(text_hits)]
        assert len(text_hits) == min(len(subset), max(top - k, 0))
        # The fill keeps the visual order of what is left.
        fill = [h.row for h in hits[k + len(text_hits) :]]
        assert fill == [r for r in ranking if r not in set(rows(hits[: k + len(text_hits)]))][: len(fill)]
        for hit in hits:
            assert hit.score == pytest.approx(float(vectors[hit.row] @ queries[q]), abs=1e-5)


def test_k_larger_than_top_is_clamped_to_top() -> None:
    from runtime.search.two_stage import refine
    from runtime.search.textmap import TextNeighbours

    vectors = np.eye(4, dtype=np.float32)
    text_map = TextNeighbours(np.array([0, 0, 0, 0, 0]), np.zeros(0, np.int32), np.zeros(0, np.float32))
    hits = refine(vectors[0], np.arange(4), np.array([1.0, 0.5, 0.4, 0.3]), vectors, text_map, k=4, top=2)
    assert [h.row for h in hits] == [0, 1]


# --- product vote ---------------------------------------------------------------------------------------------------
# Visual ranking 0..7 scores cos(10 i deg): 1.000, 0.985, 0.940, 0.866, 0.766, ...


def test_vote_picks_the_product_with_the_largest_summed_similarity(index: VisualIndex) -> None:
    products = np.array([0, 1, 1, 2, 1, 3, 4, 5])  # product 1 holds rows 1, 2 and 4
    ids, scores = index.search(QUERY, 8)
    voted_ids, voted_scores = vote_by_product(ids[0], scores[0], products, m=3)
    # Top 3 = rows 0, 1, 2: product 0 sums 1.0, product 1 sums 0.985 + 0.940; its best row (1) goes first.
    assert voted_ids.tolist() == [1, 0, 2, 3, 4, 5, 6, 7]
    np.testing.assert_allclose(voted_scores, [score(r) for r in voted_ids], atol=1e-6)
    # Over the top 1 only, nothing moves.
    assert vote_by_product(ids[0], scores[0], products, m=1)[0].tolist() == list(range(8))


def test_vote_with_one_image_per_product_keeps_the_visual_ranking(index: VisualIndex) -> None:
    ids, scores = index.search(QUERY, 8)
    assert vote_by_product(ids[0], scores[0], np.arange(8), m=8)[0].tolist() == list(range(8))


def test_vote_winner_is_refined_by_its_text_neighbours(index: VisualIndex) -> None:
    products = np.array([0, 1, 1, 2, 3, 4, 5, 6])
    neighbours = text_map({1: [2, 6]})
    [plain] = two_stage_search(QUERY, index, neighbours, k=1, top=4)
    [voted] = two_stage_search(QUERY, index, neighbours, k=1, top=4, vote=3, products=products)
    assert rows(plain) == [0, 1, 2, 3]
    assert rows(voted) == [1, 2, 6, 0]  # the vote's winner, its text neighbours by visual similarity, then visual
    assert stages(voted) == [VISUAL, TEXT, TEXT, VISUAL]
    [visual] = two_stage_search(QUERY, index, neighbours, k=0, top=4, vote=3, products=products)
    assert rows(visual) == [0, 1, 2, 3]  # k = 0 stays the raw visual ranking
    with pytest.raises(ValueError):
        two_stage_search(QUERY, index, neighbours, k=1, vote=3)


# --- distinct products ----------------------------------------------------------------------------------------------


def test_distinct_products_search_deeper_when_one_product_fills_the_ranking() -> None:
    rng = np.random.default_rng(0)
    close = np.c_[np.ones(150), 0.05 * rng.standard_normal((150, 15))]  # product "A": 150 images near the query
    far = np.c_[np.full(150, 0.3), rng.standard_normal((150, 15))]  # 150 products of one image each
    vectors = np.r_[close, far]
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    index = VisualIndex.build(vectors, IndexParams(exact_below=10_000))
    products = ["A"] * 150 + [f"p{i}" for i in range(150)]
    query = np.eye(16, dtype=np.float32)[:1]
    text_map = TextNeighbours(np.zeros(301, np.int64), np.zeros(0, np.int32), np.zeros(0, np.float32))
    [hits] = two_stage_search(query, index, text_map, k=1, top=7, vote=10, products=products, distinct=True)
    assert len(hits) == 7 and len({products[h.row] for h in hits}) == 7
    assert products[hits[0].row] == "A" and all(h.row >= 150 for h in hits[1:])
    [rows_only] = two_stage_search(query, index, text_map, k=1, top=7, vote=10, products=products)
    assert {products[h.row] for h in rows_only} == {"A"}  # the image-level ranking: seven photos of one product
    with pytest.raises(ValueError, match="product code"):
        two_stage_search(query, index, text_map, k=1, top=7, distinct=True)
