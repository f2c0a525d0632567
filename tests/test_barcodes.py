"""Barcodes (runtime/barcode): GTIN check digits, the reader on generated store-like photos of packages with a
printed EAN-13 (export.synthetic.barcodes), and the catalogue's GTIN lookup."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from export.synthetic.barcodes import HARSH, barcode_photo
from runtime.barcode.gtin import check_digit, gtin_problem, normal_gtin
from runtime.barcode.lookup import GtinLookup
from runtime.barcode.reader import BarcodeReader
from runtime.bundle.catalog import CatalogItem, CatalogRows, write_catalog

from .barcode_photos import FEW, GTINS, PACKAGES, PHOTOS, group_of, photos
from .conftest import DEMO


def test_gtin_check_digits() -> None:
    assert [check_digit(body) for body in ("400638133393", "03600029145", "9638507")] == [1, 2, 4]
    assert gtin_problem("4006381333931") is None and gtin_problem("10614141000415") is None
    assert gtin_problem("4006381333932") == "gtin '4006381333932' has check digit 2, expected 1"
    assert gtin_problem("40063813339") == "gtin '40063813339' has 11 digits, not 8, 12, 13 or 14"
    assert gtin_problem("40063813339X1") == "gtin '40063813339X1' is not all digits"
    assert gtin_problem("٤٠٠٦٣٨١٣٣٣٩٣١") is not None  # Arabic-Indic digits are digits to str.isdigit, not to GS1
    assert normal_gtin("036000291452") == normal_gtin("0036000291452") == "00036000291452"
    with pytest.raises(ValueError):
        normal_gtin("4006381333932")


def test_the_reader_finds_the_printed_barcodes() -> None:
    reader = BarcodeReader()
    assert [reader.read(photo) for photo in photos(FEW)] == [[normal_gtin(GTINS[n])] for n in range(FEW)]


def test_the_reader_finds_nothing_without_a_barcode_or_on_one_turned_sideways() -> None:
    reader = BarcodeReader()
    assert all(reader.read(photo) == [] for photo in photos(FEW, barcode=False))
    assert all(reader.read(Image.open(path)) == [] for path in sorted((DEMO / "images").glob("*_query.jpg")))
    # rows only (the reader's speed setting): a barcode turned by 90 degrees is left to the visual search
    assert reader.read(photos(FEW)[0].rotate(90, expand=True)) == []


def test_a_misread_number_is_never_given() -> None:
    """On photos softer and more oblique than a kiosk's, the quick pass alone decodes wrong numbers with a valid
    check digit; confirmed by the two further readings, the reader gives only right GTINs (or none)."""
    import zxingcpp

    shown = photos(FEW, shot=HARSH)
    right = [normal_gtin(GTINS[n]) for n in range(FEW)]
    quick = [[normal_gtin(code.text) for code in zxingcpp.read_barcodes(
        np.asarray(photo.convert("L")), formats=BarcodeReader()._formats, try_rotate=False, try_downscale=False,
        try_invert=False)] for photo in shown]
    assert any(gtin != truth for read, truth in zip(quick, right) for gtin in read)  # what the guard is for
    read = [BarcodeReader().read(photo) for photo in shown]
    assert all(gtins in ([], [truth]) for gtins, truth in zip(read, right))
    assert sum(gtins == [truth] for gtins, truth in zip(read, right)) >= FEW // 2


def test_the_lookup_keys_gtins_by_their_14_digit_spelling(tmp_path: Path) -> None:
    items = [CatalogItem("a", 'Milk "gtin": "4006381333931"', "a.jpg", "A", {"price": "1"}),  # a title is no key
             CatalogItem("b", "Oat", "b.jpg", "B", {"gtin": "036000291452", "note": 'say "hi"'}),
             CatalogItem("b2", "Oat, side", "b2.jpg", "B", {"gtin": "036000291452"}),
             CatalogItem("c", "Rye", "c.jpg", "C", {"gtin": "4006381333932"}),  # wrong check digit: left out
             CatalogItem("d", "Tea", "d.jpg", "D", {"gtin": "96385074"})]
    write_catalog(items, tmp_path / "catalog.jsonl")
    rows = CatalogRows(tmp_path / "catalog.jsonl")
    assert rows.field_values("gtin") == [(1, "036000291452"), (2, "036000291452"), (3, "4006381333932"), (4, "96385074")]
    for catalog in (rows, items):
        lookup = GtinLookup.from_catalog(catalog)
        assert lookup is not None and len(lookup) == 2
        assert lookup.row([normal_gtin("0036000291452")]) == 1  # the UPC-A, read as EAN-13: the product's first row
        assert lookup.row(["00000000000000", normal_gtin("96385074")]) == 4
        assert lookup.row([normal_gtin("4006381333931")]) is None
    assert GtinLookup.from_catalog(items[:1]) is None  # no GTIN anywhere: no barcode stage at all


@pytest.mark.slow
def test_a_bundle_answers_a_barcode_first_and_other_photos_as_before(gtin_bundle: Path, demo_bundle: Path) -> None:
    """The demo catalogue with a GTIN per product, built as the demo bundle is: each of the 20 barcode photos is
    answered by its product, stage "barcode", confidence 1; photos without a barcode get the demo bundle's answers;
    a GTIN the catalogue lacks changes nothing."""
    from runtime.retriever import Retriever

    queries = sorted((DEMO / "images").glob("*_query.jpg"))
    stranger = barcode_photo(Image.open(PACKAGES[0]), GTINS[-1], np.random.default_rng(1))  # a GTIN not sold here
    with Retriever.open(gtin_bundle) as retriever, Retriever.open(demo_bundle) as plain:
        assert retriever.barcode_reader is not None and plain.barcode_reader is None
        for n, answer in enumerate(retriever.answer(list(photos()))):
            group, first = group_of(PACKAGES[n % len(PACKAGES)]), answer.matches[0]
            assert (first.group, first.stage, first.confidence, answer.found) == (group, "barcode", 1.0, True)
            assert group not in [m.group for m in answer.matches[1:]] and len(answer.matches) == 7
        unknown = retriever.answer([stranger])[0]
        with Retriever.open(gtin_bundle, barcodes=False) as blind:
            assert [m.id for m in unknown.matches] == [m.id for m in blind.answer([stranger])[0].matches]
        assert "barcode" not in [m.stage for m in unknown.matches]
        same = lambda answers: [[(m.id, m.stage, round(m.score, 5), m.confidence) for m in a.matches] for a in answers]
        assert same(retriever.answer(queries)) == same(plain.answer(queries))
