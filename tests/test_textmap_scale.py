"""The vectorised text map against references on grammar-made catalogue titles: the row-by-row definition it
replaced (identical arrays), a dense brute-force cosine matrix and scikit-learn's NearestNeighbors peer."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn")
from sklearn.neighbors import NearestNeighbors  # noqa: E402

from export.synthetic.catalogs import SynthParams, layout, titles  # noqa: E402
from export.bundle.textmap import TextMapParams, build_text_map, tfidf_matrix  # noqa: E402


@pytest.fixture(scope="module")
def generated_titles() -> list[str]:
    params = SynthParams(items=1500, dim=8, brands=12, seed=3)
    return titles(params, layout(params))


def row_by_row(titles_: list[str], params: TextMapParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The definition as first written: one chunk product, then a Python loop over its rows."""
    tfidf = tfidf_matrix(titles_, params)
    transposed = tfidf.T.tocsr()
    indptr, indices, sims = [0], [], []
    for start in range(0, tfidf.shape[0], params.chunk_rows):
        block = (tfidf[start : start + params.chunk_rows] @ transposed).tocsr()
        for offset in range(block.shape[0]):
            lo, hi = block.indptr[offset], block.indptr[offset + 1]
            cols, vals = block.indices[lo:hi], block.data[lo:hi]
            keep = (vals >= params.threshold) & (cols != start + offset)
            cols, vals = cols[keep], vals[keep]
            order = np.lexsort((cols, -vals))[: params.top_n]
            indices.append(cols[order].astype(np.int32))
            sims.append(vals[order].astype(np.float32))
            indptr.append(indptr[-1] + len(order))
    return np.asarray(indptr), np.concatenate(indices), np.concatenate(sims)


@pytest.mark.parametrize("params", [
    TextMapParams(), TextMapParams(top_n=7, chunk_rows=100), TextMapParams(max_df=0.05, threshold=0.2),
    TextMapParams(min_df=2, top_n=20, threads=1),
], ids=["default", "top7-small-chunks", "max_df", "min_df-1-thread"])
def test_identical_to_the_row_by_row_definition(generated_titles, params) -> None:
    got = build_text_map(generated_titles, params)
    indptr, indices, sims = row_by_row(generated_titles, params)
    np.testing.assert_array_equal(got.indptr, indptr)
    np.testing.assert_array_equal(got.indices, indices)
    np.testing.assert_array_equal(got.similarity, sims)
    assert len(indices) > 5 * len(generated_titles)  # not vacuous


def test_matches_a_dense_brute_force_reference(generated_titles) -> None:
    params = TextMapParams(top_n=10, max_df=0.05)
    got = build_text_map(generated_titles, params)
    dense = tfidf_matrix(generated_titles, params).toarray().astype(np.float64)
    cosine = dense @ dense.T
    np.fill_diagonal(cosine, -1.0)
    for row in range(len(generated_titles)):
        ours = got.neighbours(row)
        np.testing.assert_allclose(got.similarities(row), cosine[row, ours], atol=1e-5)
        eligible = np.flatnonzero(cosine[row] >= params.threshold)
        if len(ours) < params.top_n:  # short list: every title clearly above the threshold is in it
            clear = eligible[cosine[row, eligible] >= params.threshold + 1e-5]
            assert set(clear.tolist()) <= set(ours.tolist()) and np.all(cosine[row, ours] >= params.threshold - 1e-5)
        else:  # full list: nothing left out beats its last entry (beyond float noise)
            outside = np.setdiff1d(eligible, ours)
            assert not np.any(cosine[row, outside] > got.similarities(row)[-1] + 1e-5)


def test_same_lists_as_the_scikit_learn_peer(generated_titles) -> None:
    """Equal top-N lists as scikit-learn's brute-force cosine kNN on the same TF-IDF rows (ties and the
    threshold compared with a float tolerance: the peer works in float64 distances)."""
    params = TextMapParams(top_n=10, max_df=0.05)
    got = build_text_map(generated_titles, params)
    tfidf = tfidf_matrix(generated_titles, params)
    distances, ids = NearestNeighbors(metric="cosine", algorithm="brute").fit(tfidf).kneighbors(
        tfidf, n_neighbors=params.top_n + 30)
    compared = 0
    for row in range(len(generated_titles)):
        peer = [(int(j), 1.0 - float(d)) for j, d in zip(ids[row], distances[row]) if j != row and 1.0 - d >= params.threshold - 1e-6]
        peer.sort(key=lambda pair: -pair[1])
        peer = peer[: params.top_n]
        ours = list(zip(got.neighbours(row).tolist(), got.similarities(row).tolist()))
        for (j1, s1), (j2, s2) in zip(ours, peer):
            assert s1 == pytest.approx(s2, abs=1e-5)
        # Same neighbours: every one not tied (within float noise) with the last of a full list or the threshold.
        cut = max(peer[-1][1] if len(peer) == params.top_n else -1.0, params.threshold)
        assert {j for j, s in ours if s > cut + 1e-5} == {j for j, s in peer if s > cut + 1e-5}, row
        compared += len(ours)
    assert compared > 5 * len(generated_titles)
