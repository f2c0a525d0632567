"""The label index: products scored against the words read on a photo, tolerant of OCR slips."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from runtime.errors import BundleError
from runtime.search.label_index import LabelIndex, RowReads, grams, title_matches, tokens

TITLES = ["Bravo Orange Juice", "Bravo Apple Juice", "Alpro Vanilla Soyghurt", "Alpro Blueberry Soyghurt",
          "Garant Mellanmjölk 1.5%"]
#: Words read on each product's catalogue image (rows 0..4), one row per product here.
READS = [[("BRAVO", 0.99), ("APELSIN", 0.96)], [("BRAVO", 0.98), ("APPLE", 0.9)], [("alpro", 0.99), ("Vanilla", 0.8)],
         [("alpro", 0.97)], [("MELLANMJÖLK", 0.9)]]


@pytest.fixture(scope="module")
def index() -> LabelIndex:
    texts = [reads + [(title, 1.0)] for reads, title in zip(READS, TITLES)]
    return LabelIndex.build(range(len(TITLES)), texts, RowReads.from_lists(READS))


def test_words_are_normalised_and_cut_into_padded_grams() -> None:
    assert tokens("MJÖLK 1.5% x") == ["mjolk"]  # accents folded, one-letter and punctuation dropped
    assert grams("Apple") == [" ap", "app", "ppl", "ple", "le "]
    assert grams("") == []


def test_ocr_slips_still_find_their_product(index: LabelIndex) -> None:
    scores = index.score([("APELSIH", 0.9), ("JUCE", 0.8)])  # "APELSIN", "JUICE" as an OCR misreads them
    assert int(np.argmax(scores)) == 0
    assert int(np.argmax(index.score([("MELLANMJOLK", 0.9)]))) == 4


def test_a_brand_on_every_product_counts_less_than_the_line(index: LabelIndex) -> None:
    scores = index.score([("alpro", 0.99), ("Vanila", 0.8)])
    assert int(np.argmax(scores)) == 2 and scores[2] > scores[3]
    brand_only = index.score([("alpro", 0.99)])
    assert brand_only[2] == pytest.approx(brand_only[3], abs=0.15)  # the brand alone cannot choose


def test_nothing_read_or_nothing_known_scores_zero(index: LabelIndex) -> None:
    assert not index.score([]).any()
    assert not index.score([("zzqx", 0.9)]).any()
    assert index.score([("BRAVO", 1.0)]).max() <= 1.0 + 1e-6


def test_save_and_load_round_trip_without_pickle(index: LabelIndex, tmp_path: Path) -> None:
    path = tmp_path / "labels.npz"
    index.save(path)
    loaded = LabelIndex.load(path)
    words = [("BRAVO", 0.9), ("APPLE", 0.8)]
    np.testing.assert_array_equal(loaded.score(words), index.score(words))
    assert loaded.reads.by_row(5)[1] == [("BRAVO", pytest.approx(0.98)), ("APPLE", pytest.approx(0.9))]
    assert list(loaded.rows_of(4)) == [4] and len(loaded) == 5


def test_damaged_or_inconsistent_files_are_refused(index: LabelIndex, tmp_path: Path) -> None:
    path = tmp_path / "labels.npz"
    path.write_bytes(b"not a zip")
    with pytest.raises(BundleError, match="not a valid label index"):
        LabelIndex.load(path)
    with open(path, "wb") as handle:
        np.savez(handle, vocabulary=index.vocabulary)
    with pytest.raises(BundleError, match="lacks the array"):
        LabelIndex.load(path)
    with pytest.raises(BundleError, match="outside the catalogue"):
        LabelIndex(index.vocabulary, index.idf, index.indptr, index.products + 10, index.weights, index.row_product,
                   index.reads)
    with pytest.raises(BundleError, match="CSR"):
        LabelIndex(index.vocabulary, index.idf, index.indptr[::-1].copy(), index.products, index.weights,
                   index.row_product, index.reads)


def test_title_words_that_were_read_are_marked() -> None:
    title = "God Morgon Orange Red Grapefruit Juice"
    spans = title_matches(title, ["orange&red", "grapetruit", "100%"])
    assert [title[a:b] for a, b in spans] == ["Orange", "Red", "Grapefruit"]
    assert title_matches(title, []) == []
