"""runtime.search.textmap (TextNeighbours storage and validation) and export.bundle.textmap.build_text_map (TF-IDF neighbours)."""
from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from runtime.errors import BundleError
from runtime.search.textmap import TextNeighbours

sklearn = pytest.importorskip("sklearn")
from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: E402
from sklearn.neighbors import NearestNeighbors  # noqa: E402

from export.bundle.textmap import TextMapParams, build_text_map  # noqa: E402

# --- TextNeighbours ------------------------------------------------------------------------------------


def small_map() -> TextNeighbours:
    # row 0 -> 2, 1; row 1 -> (none); row 2 -> 0; row 3 -> 0, 1, 2
    return TextNeighbours(
        np.array([0, 2, 2, 3, 6]),
        np.array([2, 1, 0, 0, 1, 2]),
        np.array([0.9, 0.5, 0.9, 0.7, 0.6, 0.4]),
    )


def test_neighbours_and_similarities_per_row() -> None:
    tmap = small_map()
    assert len(tmap) == 4
    assert tmap.neighbours(0).tolist() == [2, 1]
    assert tmap.neighbours(1).tolist() == []
    assert tmap.neighbours(3).tolist() == [0, 1, 2]
    np.testing.assert_allclose(tmap.similarities(3), [0.7, 0.6, 0.4], rtol=1e-6)
    assert tmap.indptr.dtype == np.int64 and tmap.indices.dtype == np.int32 and tmap.similarity.dtype == np.float32


@pytest.mark.parametrize("name", ["text_map.npz", "text_map"])
def test_save_load_round_trip(tmp_path: Path, name: str) -> None:
    tmap = small_map()
    path = tmp_path / name
    tmap.save(path)
    assert path.exists()  # written under the name given, no ".npz" appended
    again = TextNeighbours.load(path)
    np.testing.assert_array_equal(again.indptr, tmap.indptr)
    np.testing.assert_array_equal(again.indices, tmap.indices)
    np.testing.assert_array_equal(again.similarity, tmap.similarity)
    assert [again.neighbours(r).tolist() for r in range(4)] == [tmap.neighbours(r).tolist() for r in range(4)]


def test_empty_map_round_trip(tmp_path: Path) -> None:
    empty = TextNeighbours(np.zeros(4, np.int64), np.zeros(0, np.int32), np.zeros(0, np.float32))
    path = tmp_path / "text_map.npz"
    empty.save(path)
    again = TextNeighbours.load(path)
    assert len(again) == 3 and all(again.neighbours(r).size == 0 for r in range(3))


def test_object_arrays_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "text_map.npz"
    np.savez(
        path,
        indptr=np.array([0, 1, 2], dtype=object),
        indices=np.array([1, 0], dtype=object),
        similarity=np.array([0.5, 0.5], dtype=object),
    )
    with pytest.raises(BundleError, match="text_map.npz: not a valid text map") as info:
        TextNeighbours.load(path)
    assert "allow_pickle" in str(info.value)


def test_missing_array_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "text_map.npz"
    np.savez(path, indptr=np.array([0, 0]), indices=np.zeros(0, np.int32))
    with pytest.raises(BundleError, match=r"lacks the array\(s\) similarity$"):
        TextNeighbours.load(path)


@pytest.mark.parametrize("content", [b"", b"not a zip file at all", b"PK\x03\x04broken"])
def test_not_an_npz_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "text_map.npz"
    path.write_bytes(content)
    with pytest.raises(BundleError, match="text_map.npz"):
        TextNeighbours.load(path)


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="text_map.npz"):
        TextNeighbours.load(tmp_path / "text_map.npz")


BAD_CSR = {
    "indptr-not-from-zero": ([1, 2, 3], [0, 1, 0], [1, 1, 1], "indptr"),
    "indptr-decreasing": ([0, 2, 1, 3], [0, 1, 2], [1, 1, 1], "indptr"),
    "indptr-end-not-nnz": ([0, 1, 2], [1, 0, 1], [1, 1, 1], "indptr"),
    "indptr-empty": ([], [], [], "indptr"),
    "similarity-length": ([0, 1, 2], [1, 0], [1.0], "differ in length"),
    "id-too-large": ([0, 1, 2], [1, 2], [1, 1], "outside the catalogue"),
    "id-negative": ([0, 1, 2], [1, -1], [1, 1], "outside the catalogue"),
}


@pytest.mark.parametrize("case", sorted(BAD_CSR))
def test_invalid_csr_is_refused(case: str) -> None:
    indptr, indices, similarity, message = BAD_CSR[case]
    with pytest.raises(BundleError, match=message):
        TextNeighbours(np.array(indptr, np.int64), np.array(indices, np.int32), np.array(similarity, np.float32))


@pytest.mark.parametrize("case", sorted(BAD_CSR))
def test_invalid_csr_in_a_file_is_refused(tmp_path: Path, case: str) -> None:
    indptr, indices, similarity, message = BAD_CSR[case]
    path = tmp_path / "text_map.npz"
    np.savez(
        path,
        indptr=np.array(indptr, np.int64),
        indices=np.array(indices, np.int32),
        similarity=np.array(similarity, np.float32),
    )
    with pytest.raises(BundleError, match=message):
        TextNeighbours.load(path)


# --- build_text_map -----------------------------------------------------------------------------------

BRANDS = ["Dior", "Chanel", "Lancôme", "MAC"]
LINES = ["Rouge Couture", "Rouge Allure Velvet", "L'Absolu Rouge", "Matte Lipstick"]
SHADES = ["No. 169", "No. 170", "No. 999", "No. 5", "No. 12", "No. 44", "No. 201", "No. 312"]
SIZES = ["3.5 g", "1.6 g", "3 g"]


def catalogue_titles() -> list[str]:
    titles = [f"{b} {l} {s} {z}" for b, l, s, z in itertools.product(BRANDS, LINES, SHADES, SIZES)]
    # Near-duplicates and odd rows: a repeated title, an empty one, case and accent variants.
    return titles + ["Dior Rouge Couture No. 169 3.5 g", "", "DIOR rouge couture no. 169 3,5 G", "Lancome Matte"]


def reference_neighbours(titles: list[str], params: TextMapParams) -> tuple[np.ndarray, np.ndarray]:
    """All pairwise cosine similarities through scikit-learn's brute-force cosine kNN: (ids, sims) per row."""
    vectorizer = TfidfVectorizer(
        token_pattern=params.token_pattern, sublinear_tf=params.sublinear_tf, strip_accents="unicode"
    )
    tfidf = vectorizer.fit_transform(titles)
    knn = NearestNeighbors(metric="cosine", algorithm="brute").fit(tfidf)
    distances, ids = knn.kneighbors(tfidf, n_neighbors=len(titles))
    return ids, 1.0 - distances


@pytest.fixture(scope="module")
def titles() -> list[str]:
    return catalogue_titles()


@pytest.fixture(scope="module")
def full_params() -> TextMapParams:
    return TextMapParams(top_n=100_000)  # no truncation: every neighbour above the threshold


@pytest.fixture(scope="module")
def full_map(titles, full_params) -> TextNeighbours:
    return build_text_map(titles, full_params)


def test_matches_scikit_learn_cosine_neighbours(titles, full_params, full_map) -> None:
    assert len(titles) > 300
    assert len(full_map) == len(titles)
    ids, sims = reference_neighbours(titles, full_params)
    threshold, band = full_params.threshold, 1e-5
    total = 0
    for row in range(len(titles)):
        expected = {int(j): float(s) for j, s in zip(ids[row], sims[row]) if j != row and s >= threshold - band}
        got = dict(zip(full_map.neighbours(row).tolist(), full_map.similarities(row).tolist()))
        assert row not in got  # never itself
        sure = {j for j, s in expected.items() if s >= threshold + band}  # clear of float noise at the cut
        assert sure <= set(got), f"row {row} ({titles[row]!r}) misses {sure - set(got)}"
        assert set(got) <= set(expected), f"row {row} ({titles[row]!r}) has extra {set(got) - set(expected)}"
        for j, s in got.items():
            assert s >= threshold
            assert s == pytest.approx(expected[j], abs=1e-5)
        total += len(got)
    assert total > 10 * len(titles)  # the comparison is not vacuous


def test_rows_are_best_first_with_ties_by_row(full_map) -> None:
    for row in range(len(full_map)):
        cols, sims = full_map.neighbours(row), full_map.similarities(row)
        for (c1, s1), (c2, s2) in zip(zip(cols, sims), zip(cols[1:], sims[1:])):
            assert s1 > s2 or (s1 == s2 and c1 < c2)


def test_top_n_keeps_the_best_prefix(titles, full_map) -> None:
    capped = build_text_map(titles, TextMapParams(top_n=5))
    assert max(len(capped.neighbours(r)) for r in range(len(capped))) == 5
    for row in range(len(titles)):
        full = full_map.neighbours(row).tolist()
        assert capped.neighbours(row).tolist() == full[:5]
        np.testing.assert_array_equal(capped.similarities(row), full_map.similarities(row)[:5])


def test_small_chunks_give_the_same_map(titles, full_params, full_map) -> None:
    for chunk_rows in (7, 1, len(titles) + 10):
        chunked = build_text_map(titles, TextMapParams(top_n=full_params.top_n, chunk_rows=chunk_rows))
        np.testing.assert_array_equal(chunked.indptr, full_map.indptr)
        np.testing.assert_array_equal(chunked.indices, full_map.indices)
        np.testing.assert_allclose(chunked.similarity, full_map.similarity, rtol=0, atol=1e-7)


def test_titles_differing_by_shade_number_are_neighbours(titles) -> None:
    tmap = build_text_map(titles)  # default parameters, as a bundle build uses
    a = titles.index("Dior Rouge Couture No. 169 3.5 g")
    b = titles.index("Dior Rouge Couture No. 170 3.5 g")
    c = titles.index("Chanel Matte Lipstick No. 5 3 g")
    assert b in tmap.neighbours(a).tolist() and a in tmap.neighbours(b).tolist()
    assert c not in tmap.neighbours(a).tolist()
    # The exact duplicate and the case / decimal-comma variant rank first for row a.
    duplicate = len(titles) - 4
    variant = len(titles) - 2
    assert tmap.neighbours(a).tolist()[0] == duplicate
    assert tmap.similarities(a)[0] == pytest.approx(1.0, abs=1e-5)
    assert variant in tmap.neighbours(a).tolist()[:3]


def test_accents_are_stripped() -> None:
    tmap = build_text_map(["Lancôme Absolu", "Lancome Absolu", "Other Thing"])
    assert tmap.neighbours(0).tolist() == [1]
    assert tmap.similarities(0)[0] == pytest.approx(1.0, abs=1e-6)


def test_threshold_is_respected() -> None:
    titles = ["alpha beta gamma", "alpha beta delta", "alpha epsilon zeta", "omega"]
    loose = build_text_map(titles, TextMapParams(threshold=0.01))
    strict = build_text_map(titles, TextMapParams(threshold=0.99))
    assert set(loose.neighbours(0).tolist()) == {1, 2}
    assert loose.neighbours(3).size == 0
    assert strict.indices.size == 0


def test_empty_row_has_no_neighbours(titles, full_map) -> None:
    empty_row = titles.index("")
    assert full_map.neighbours(empty_row).size == 0
    assert all(empty_row not in full_map.neighbours(r).tolist() for r in range(len(full_map)))


@pytest.mark.parametrize("blank", [["", "", ""], ["", "  ", "-- ..."], []])
def test_all_empty_titles_give_an_empty_map(blank: list[str]) -> None:
    tmap = build_text_map(blank)
    assert len(tmap) == len(blank)
    assert tmap.indices.size == 0 and tmap.similarity.size == 0
    assert all(tmap.neighbours(r).size == 0 for r in range(len(blank)))


def test_built_map_survives_save_and_load(tmp_path: Path, full_map) -> None:
    path = tmp_path / "text_map.npz"
    full_map.save(path)
    again = TextNeighbours.load(path)
    np.testing.assert_array_equal(again.indptr, full_map.indptr)
    np.testing.assert_array_equal(again.indices, full_map.indices)
    np.testing.assert_array_equal(again.similarity, full_map.similarity)


def test_params_to_dict() -> None:
    params = TextMapParams().to_dict()
    assert params["top_n"] == 50 and params["threshold"] == 0.3 and params["sublinear_tf"] is True


def test_saved_map_is_memory_mapped_and_compressed_maps_still_load(tmp_path: Path) -> None:
    tmap = small_map()
    path = tmp_path / "text_map.npz"
    tmap.save(path)
    mapped = TextNeighbours.load(path)
    assert isinstance(mapped.indices.base, np.memmap) or isinstance(mapped.indices, np.memmap)
    compressed = tmp_path / "compressed.npz"
    np.savez_compressed(compressed, indptr=tmap.indptr, indices=tmap.indices, similarity=tmap.similarity)
    again = TextNeighbours.load(compressed)  # np.load fallback
    assert [again.neighbours(r).tolist() for r in range(4)] == [tmap.neighbours(r).tolist() for r in range(4)]


def test_an_updated_map_links_the_added_titles_as_a_rebuild_does() -> None:
    from export.bundle.textmap import update_text_map

    titles = [f"Rouge Eclat lipstick {c} No. {i}" for i, c in enumerate(["red", "rose", "nude", "plum"] * 25)]
    titles += [f"Arla milk {i} fat" for i in range(30)]
    old_rows = [i for i in range(len(titles)) if not 10 <= i < 20]
    old = build_text_map([titles[i] for i in old_rows])
    keep = np.array([i for i in range(len(old_rows)) if i % 9], dtype=np.int64)  # some removed too
    final = [titles[old_rows[i]] for i in keep] + titles[10:20]
    updated = update_text_map(old, keep, final)
    rebuilt = build_text_map(final)
    assert len(updated) == len(final)
    for row in range(len(keep), len(final)):  # the added titles: linked with the final weights, as a rebuild links them
        np.testing.assert_array_equal(updated.neighbours(row), rebuilt.neighbours(row))
        np.testing.assert_allclose(updated.similarities(row), rebuilt.similarities(row), atol=1e-6)
    for row in range(len(final)):
        sims = updated.similarities(row)
        assert len(sims) <= 50 and np.all(sims >= 0.3) and np.all(np.diff(sims) <= 1e-7)
        assert row not in updated.neighbours(row)
    # an old title that an added one resembles takes it in
    assert any(set(updated.neighbours(row)) & set(range(len(keep), len(final))) for row in range(len(keep)))
