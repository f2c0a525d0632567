"""The beauty case the papers are about: look-alike lipsticks told apart only by their printed shade code and name.

A generated catalogue (export.synthetic.shades: one pack, one colour, 16 shades) is queried with store-like photos at a
camera's resolution. The visual search cannot tell the packs apart; reading the label can.
"""
from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("sklearn")
from export.bundle.build import BuildOptions, build_bundle  # noqa: E402
from export.synthetic.shades import make_shade_catalogue  # noqa: E402
from runtime.retriever import Retriever  # noqa: E402
from runtime.tools.evaluate import evaluate, read_queries  # noqa: E402

PRODUCTS = 16


@pytest.fixture(scope="module")
def shades(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("shades")
    catalogue = make_shade_catalogue(folder / "data", products=PRODUCTS, photos_per_product=2, seed=0)
    build_bundle(catalogue.catalog_csv, folder / "bundle", BuildOptions(progress=False, calibration=None, pictures=False))
    return catalogue, folder / "bundle"


@pytest.mark.slow
def test_reading_the_shade_finds_it_where_the_picture_cannot(shades) -> None:
    catalogue, bundle = shades
    with Retriever.open(bundle) as retriever:
        report = evaluate(retriever, read_queries(catalogue.queries_csv))
    fused, visual = report["products"]["top1"], report["ocr_off"]["products"]["top1"]
    assert report["ocr"]["photos_with_text"] == report["queries"] == 2 * PRODUCTS
    assert visual <= 0.3  # near chance (1 / 16): same pack, same colour
    assert fused >= 0.9


@pytest.mark.slow
def test_the_answer_says_what_was_read_and_where(shades) -> None:
    catalogue, bundle = shades
    photo = sorted((catalogue.queries_csv.parent / "photos").glob("*.jpg"))[0]
    code = photo.name.split("_")[0].removeprefix("shade-")
    with Retriever.open(bundle) as retriever:
        answer = retriever.answer([photo])[0]
    assert answer.matches[0].group == f"shade-{code}"
    assert any(code in word.text for word in answer.words)
    assert all(0 <= word.box[0] < word.box[2] <= 1280 for word in answer.words)


def test_the_catalogue_is_deterministic(tmp_path: Path) -> None:
    a = make_shade_catalogue(tmp_path / "a", products=3, photos_per_product=1, seed=4)
    b = make_shade_catalogue(tmp_path / "b", products=3, photos_per_product=1, seed=4)
    assert a.catalog_csv.read_text() == b.catalog_csv.read_text()
    for image in sorted((tmp_path / "a" / "photos").glob("*.jpg")):
        assert image.read_bytes() == (tmp_path / "b" / "photos" / image.name).read_bytes()
    with pytest.raises(ValueError, match="products"):
        make_shade_catalogue(tmp_path / "c", products=1)
