"""runtime.search.index: HNSW recall against brute force, exact search, persistence and errors."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from runtime.errors import BundleError
from runtime.search.index import IndexParams, VisualIndex

TOP = 7


def unit_rows(a: np.ndarray) -> np.ndarray:
    return (a / np.linalg.norm(a, axis=1, keepdims=True)).astype(np.float32)


def clustered(n: int, dim: int, clusters: int, seed: int, spread: float = 0.35) -> tuple[np.ndarray, np.ndarray]:
    """L2-normalised vectors around random centres (like product photos around product groups), plus queries."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim))
    labels = rng.integers(0, clusters, n)
    vectors = unit_rows(centres[labels] + spread * rng.standard_normal((n, dim)))
    query_labels = rng.integers(0, clusters, 200)
    queries = unit_rows(centres[query_labels] + spread * rng.standard_normal((200, dim)))
    return vectors, queries


def brute_force(vectors: np.ndarray, queries: np.ndarray, top: int) -> np.ndarray:
    scores = queries.astype(np.float64) @ vectors.astype(np.float64).T
    return np.argsort(-scores, axis=1, kind="stable")[:, :top]


@pytest.fixture(scope="module")
def catalogue() -> tuple[np.ndarray, np.ndarray]:
    return clustered(5000, 64, clusters=100, seed=0)


@pytest.fixture(scope="module")
def hnsw_index(catalogue) -> VisualIndex:
    vectors, _ = catalogue
    return VisualIndex.build(vectors, IndexParams(), threads=2)


def test_hnsw_recall_at_7(catalogue, hnsw_index: VisualIndex) -> None:
    vectors, queries = catalogue
    assert hnsw_index.kind == "hnsw"
    assert len(hnsw_index) == 5000 and hnsw_index.dim == 64
    ids, scores = hnsw_index.search(queries, TOP)
    assert ids.shape == scores.shape == (200, TOP)
    assert ids.dtype == np.int64 and scores.dtype == np.float32
    truth = brute_force(vectors, queries, TOP)
    recall = np.mean([len(set(a) & set(b)) / TOP for a, b in zip(ids.tolist(), truth.tolist())])
    assert recall >= 0.98
    # Scores are inner products (cosines) of the returned rows, best first.
    np.testing.assert_allclose(scores, np.einsum("qd,qtd->qt", queries, vectors[ids]), atol=1e-5)
    assert (np.diff(scores, axis=1) <= 1e-6).all()


def test_exact_index_is_brute_force(catalogue) -> None:
    vectors, queries = catalogue
    index = VisualIndex.build(vectors[:800], IndexParams())  # below exact_below = 1000
    assert index.kind == "exact"
    for top in (1, TOP, 50):
        ids, scores = index.search(queries, top)
        np.testing.assert_array_equal(ids, brute_force(vectors[:800], queries, top))
        expected = (queries @ vectors[:800].T)[np.arange(len(queries))[:, None], ids]
        np.testing.assert_allclose(scores, expected, atol=1e-6)
        assert (np.diff(scores, axis=1) <= 0).all()


def test_single_query_vector_is_accepted(catalogue) -> None:
    vectors, queries = catalogue
    index = VisualIndex.build(vectors[:300])
    ids, scores = index.search(queries[0], 5)  # 1-D query
    assert ids.shape == (1, 5)
    np.testing.assert_array_equal(ids[0], brute_force(vectors[:300], queries[:1], 5)[0])


def test_item_finds_itself_first(catalogue, hnsw_index: VisualIndex) -> None:
    vectors, _ = catalogue
    rows = np.arange(0, 5000, 97)
    ids, scores = hnsw_index.search(vectors[rows], 1)
    np.testing.assert_array_equal(ids[:, 0], rows)
    np.testing.assert_allclose(scores[:, 0], 1.0, atol=1e-5)


def test_save_load_round_trip(tmp_path: Path, catalogue, hnsw_index: VisualIndex) -> None:
    vectors, queries = catalogue
    path = tmp_path / "index.bin"
    assert hnsw_index.save(path) is True
    assert path.stat().st_size > 0
    reopened = VisualIndex.load(vectors, path, hnsw_index.params)
    assert reopened.kind == "hnsw"
    before = hnsw_index.search(queries, TOP)
    after = reopened.search(queries, TOP)
    np.testing.assert_array_equal(before[0], after[0])
    np.testing.assert_array_equal(before[1], after[1])


def test_exact_index_saves_nothing_and_loads_from_none(tmp_path: Path, catalogue) -> None:
    vectors, queries = catalogue
    index = VisualIndex.build(vectors[:50])
    path = tmp_path / "index.bin"
    assert index.save(path) is False
    assert not path.exists()
    reopened = VisualIndex.load(vectors[:50], None, index.params)
    assert reopened.kind == "exact"
    np.testing.assert_array_equal(reopened.search(queries, 5)[0], index.search(queries, 5)[0])


def test_top_larger_than_the_catalogue_is_clamped(catalogue) -> None:
    vectors, queries = catalogue
    exact = VisualIndex.build(vectors[:10])
    ids, scores = exact.search(queries[:3], 50)
    assert ids.shape == scores.shape == (3, 10)
    assert all(sorted(row) == list(range(10)) for row in ids.tolist())

    hnsw = VisualIndex.build(vectors[:40], IndexParams(exact_below=0), threads=1)
    assert hnsw.kind == "hnsw"
    ids, scores = hnsw.search(queries[:3], 100)
    assert ids.shape == (3, 40)
    assert all(sorted(row) == list(range(40)) for row in ids.tolist())


@pytest.mark.parametrize("exact_below", [1000, 0])
def test_query_dimension_mismatch_raises(catalogue, exact_below: int) -> None:
    vectors, queries = catalogue
    index = VisualIndex.build(vectors[:100], IndexParams(exact_below=exact_below), threads=1)
    with pytest.raises(ValueError, match="dimension 32 != index dimension 64"):
        index.search(queries[:, :32], 5)
    with pytest.raises(ValueError, match="dimension"):
        index.search(np.ones((2, 65), np.float32), 5)


def test_exact_below_switches_kind(catalogue) -> None:
    vectors, queries = catalogue
    params = IndexParams(exact_below=100)
    assert VisualIndex.build(vectors[:99], params).kind == "exact"
    small_graph = VisualIndex.build(vectors[:100], params, threads=1)
    assert small_graph.kind == "hnsw"
    # A 100-item graph searched with ef = 128 is exhaustive: same ranking as brute force.
    np.testing.assert_array_equal(small_graph.search(queries, 5)[0], brute_force(vectors[:100], queries, 5))


@pytest.mark.parametrize("shape", [(0, 8), (8,), (2, 3, 4)])
def test_build_refuses_bad_matrices(shape) -> None:
    with pytest.raises(ValueError):
        VisualIndex.build(np.ones(shape, np.float32))


def test_params_to_dict() -> None:
    assert IndexParams().to_dict() == {"M": 32, "ef_construction": 200, "ef": 128, "exact_below": 1000, "seed": 100}


# --- loading broken index files ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_saved(tmp_path_factory, catalogue) -> tuple[np.ndarray, Path, IndexParams]:
    vectors, _ = catalogue
    params = IndexParams(exact_below=0)
    path = tmp_path_factory.mktemp("index") / "index.bin"
    VisualIndex.build(vectors[:300], params, threads=1).save(path)
    return vectors[:300], path, params


@pytest.mark.parametrize("damage", ["first-half", "last-bytes-cut", "zeros", "random", "empty"])
def test_corrupt_index_file_raises_bundle_error(tmp_path: Path, small_saved, damage: str) -> None:
    vectors, path, params = small_saved
    data = path.read_bytes()
    broken = {
        "first-half": data[: len(data) // 2],
        "last-bytes-cut": data[:-8],
        "zeros": bytes(len(data)),
        "random": np.random.default_rng(5).bytes(len(data)),
        "empty": b"",
    }[damage]
    bad = tmp_path / "index.bin"
    bad.write_bytes(broken)
    # runtime.search.hnsw_file names the fault before hnswlib sees the file
    with pytest.raises(BundleError, match="index.bin: (truncated|header element count|0 bytes, shorter)"):
        VisualIndex.load(vectors, bad, params)


def test_missing_index_file_raises_bundle_error(tmp_path: Path, small_saved) -> None:
    vectors, _, params = small_saved
    with pytest.raises(BundleError, match="nothing.bin"):
        VisualIndex.load(vectors, tmp_path / "nothing.bin", params)


@pytest.mark.parametrize("rows", [200, 310])
def test_index_and_vectors_of_different_lengths_raise(small_saved, rows: int) -> None:
    vectors, path, params = small_saved
    other = np.resize(vectors, (rows, vectors.shape[1]))
    with pytest.raises(BundleError, match=f"header element count is 300, expected {rows} for {rows} rows"):
        VisualIndex.load(other, path, params)


def test_graph_of_other_vectors_is_refused(tmp_path) -> None:
    """A graph saved for one matrix must not silently serve another of the same shape."""

    rng = np.random.default_rng(7)
    a = rng.normal(size=(50, 16)).astype(np.float32)
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    params = IndexParams(exact_below=0)
    VisualIndex.build(a, params).save(tmp_path / "index.bin")
    with pytest.raises(BundleError, match="does not index the vectors"):
        VisualIndex.load(a[::-1].copy(), tmp_path / "index.bin", params)


def test_an_updated_graph_answers_like_a_fresh_one(tmp_path: Path, catalogue) -> None:
    vectors, queries = catalogue
    old = VisualIndex.build(vectors[:4000], IndexParams(), threads=2)
    rng = np.random.default_rng(3)
    keep = np.sort(rng.choice(4000, 3600, replace=False))  # 400 rows removed, the rest move up
    updated = old.updated(keep, vectors[4000:], threads=2)  # 1,000 added
    final = np.concatenate([vectors[:4000][keep], vectors[4000:]])
    assert updated.kind == "hnsw" and len(updated) == 4600 and updated.deleted == 400
    np.testing.assert_array_equal(updated.vectors, final)
    ids, scores = updated.search(queries, TOP)
    truth = brute_force(final, queries, TOP)
    recall = np.mean([len(set(a) & set(b)) / TOP for a, b in zip(ids.tolist(), truth.tolist())])
    fresh = VisualIndex.build(final, IndexParams(), threads=2).search(queries, TOP)[0]
    fresh_recall = np.mean([len(set(a) & set(b)) / TOP for a, b in zip(fresh.tolist(), truth.tolist())])
    assert recall >= fresh_recall - 0.005  # the bound: within 0.005 of a rebuild at the same ef
    np.testing.assert_allclose(scores, np.einsum("qd,qtd->qt", queries, final[ids]), atol=1e-5)
    # the removed rows never come back: every returned row is a row of the final catalogue, found by itself
    assert ids.min() >= 0 and ids.max() < 4600
    own, _ = updated.search(final[::50], 1)
    np.testing.assert_array_equal(own[:, 0], np.arange(0, 4600, 50))
    # saved with its labels' rows and reopened
    updated.save(tmp_path / "index.bin", tmp_path / "rows.npy")
    again = VisualIndex.load(final, tmp_path / "index.bin", IndexParams(), tmp_path / "rows.npy")
    np.testing.assert_array_equal(again.search(queries, TOP)[0], ids)
    with pytest.raises(ValueError, match="labels' rows"):
        updated.save(tmp_path / "other.bin")


def test_too_many_deletions_rebuild_the_graph(catalogue) -> None:
    vectors, _ = catalogue
    old = VisualIndex.build(vectors[:3000], IndexParams(), threads=2)
    rebuilt = old.updated(np.arange(1500, 3000), vectors[3000:3100], threads=2)  # half the graph would be deleted
    assert rebuilt.kind == "hnsw" and rebuilt.label_rows is None and rebuilt.deleted == 0 and len(rebuilt) == 1600
    small = old.updated(np.arange(10), vectors[3000:3005])  # below exact_below: exact
    assert small.kind == "exact" and len(small) == 15


def test_a_bad_label_map_is_refused(tmp_path: Path, catalogue) -> None:
    vectors, _ = catalogue
    old = VisualIndex.build(vectors[:2000], IndexParams(), threads=2)
    updated = old.updated(np.arange(1, 2000), vectors[2000:2010], threads=2)
    final = updated.vectors
    updated.save(tmp_path / "index.bin", tmp_path / "rows.npy")
    rows = np.load(tmp_path / "rows.npy")
    rows[rows == 5] = 6  # row 5 twice, row 6 gone
    np.save(tmp_path / "rows.npy", rows)
    with pytest.raises(BundleError, match="one to one"):
        VisualIndex.load(final, tmp_path / "index.bin", IndexParams(), tmp_path / "rows.npy")
