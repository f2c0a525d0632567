"""Fusion of the words read with the visual ranking (runtime.search.fusion), before the vote and Algorithm 1."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from runtime.retriever import Retriever
from runtime.search.fusion import GATE_WORDS, TextEvidence, gate
from runtime.search.index import IndexParams, VisualIndex
from runtime.search.label_index import LabelIndex, RowReads
from runtime.search.textmap import TextNeighbours
from runtime.search.two_stage import two_stage_search

from .conftest import DEMO


def test_the_gate_grows_with_confident_words() -> None:
    assert gate([]) == 0.0
    assert gate([("a", 1.0), ("7", 1.0)]) == 0.0  # specks do not count
    assert gate([("MJOLK", 0.5)]) == pytest.approx(0.5 / GATE_WORDS)
    assert gate([("MJOLK", 1.0)] * 10) == 1.0


def _catalogue(n: int = 400, dim: int = 8, seed: int = 0):
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    titles = [f"Rouge Eclat satin lipstick No. {100 + i}" for i in range(n)]
    labels = LabelIndex.build(range(n), [[(t, 1.0)] for t in titles], RowReads.from_lists([[] for _ in titles]))
    empty = TextNeighbours(np.zeros(n + 1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.float32))
    return vectors, VisualIndex.build(vectors, IndexParams()), labels, empty, titles


def test_a_product_the_visual_search_missed_comes_first_when_its_code_is_read() -> None:
    vectors, index, labels, text_map, titles = _catalogue()
    query = vectors[0]
    similarity = vectors @ query
    visual = np.argsort(-similarity)
    # a look-alike far down the visual ranking (beyond the 10 rows the search asks the index for)
    target = int(next(row for row in visual[20:] if similarity[visual[0]] - similarity[row] < 0.5))
    words = [("ROUGE ECLAT", 0.97), ("Satin lipstick", 0.95), ("No.", 0.9), (str(100 + target), 0.96)]
    evidence = [TextEvidence.from_words(labels, words, weight=1.0)]
    products = list(range(len(vectors)))
    plain = two_stage_search(query[None], index, text_map, k=1, top=7, vote=10, products=products)
    fused = two_stage_search(query[None], index, text_map, k=1, top=7, vote=10, products=products, evidence=evidence)
    assert plain[0][0].row == int(visual[0]) and target not in [hit.row for hit in plain[0]]
    assert fused[0][0].row == target


def test_no_words_leave_the_ranking_exactly_as_it_was() -> None:
    vectors, index, labels, text_map, _ = _catalogue()
    queries = vectors[:5] + 0.3 * vectors[5:10]
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    assert TextEvidence.from_words(labels, [], 1.0) is None
    assert TextEvidence.from_words(labels, [("zzqx", 0.99)] * 5, 1.0) is None  # read, but nothing in the catalogue
    products = list(range(len(vectors)))
    none = two_stage_search(queries, index, text_map, k=1, vote=10, products=products, distinct=True)
    empty = two_stage_search(queries, index, text_map, k=1, vote=10, products=products, distinct=True,
                             evidence=[None] * len(queries))
    assert none == empty
    with pytest.raises(ValueError, match="one text evidence per query"):
        two_stage_search(queries, index, text_map, k=1, evidence=[None])


def test_retriever_search_with_empty_words_equals_search_without(demo_bundle: Path, demo_queries: list[Path]) -> None:
    with Retriever.open(demo_bundle) as retriever:
        descriptors, words = retriever.describe(demo_queries[:4], ocr=True)
        assert len(words) == 4 and any(words)
        off = retriever.search(descriptors)
        assert retriever.search(descriptors, words=[[] for _ in words]) == off
        assert retriever.search(descriptors, words=words, text_weight=0.0) == off
        answers = retriever.answer(demo_queries[:4])
        assert [a.matches for a in answers] == retriever.search(descriptors, words=words)
        assert [a.words for a in answers] == words
        # without reading, several photos run on the single-thread chunk path: the same ranking, scores to float rounding
        plain = retriever.query_batch(demo_queries[:4], ocr=False)
        assert [[m.id for m in r] for r in plain] == [[m.id for m in r] for r in off]
        np.testing.assert_allclose([[m.score for m in r] for r in plain], [[m.score for m in r] for r in off], atol=1e-5)
