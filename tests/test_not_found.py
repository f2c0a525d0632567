"""A confident "not found": the confidence model a build fits (export.bundle.confidence), what queries, eval and the kiosk
make of it, and how a bundle without one still answers."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from runtime import Retriever
from runtime.bundle import open_bundle
from runtime.cli import main
from runtime.confidence import ConfidenceModel, KINDS, non_product_photos
from runtime.errors import BundleError
from runtime.tools.evaluate import evaluate, read_queries

from .conftest import DEMO

#: A seed no build or eval uses: photos the bundle's model never saw.
UNSEEN = 31


def test_generated_photos_are_seeded_and_of_every_kind() -> None:
    photos = non_product_photos(16, seed=3)
    assert [kind for kind, _ in photos] == list(KINDS) * 2
    again = non_product_photos(16, seed=3)
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for (_, a), (_, b) in zip(photos, again))
    other = non_product_photos(16, seed=4)
    assert not all(np.array_equal(np.asarray(a), np.asarray(b)) for (_, a), (_, b) in zip(photos, other))
    assert all(image.mode == "RGB" and min(image.size) >= 200 for _, image in photos)


def test_a_build_fits_the_confidence_model_and_records_how(demo_bundle: Path) -> None:
    bundle = open_bundle(demo_bundle)
    section = bundle.manifest["confidence"]
    assert bundle.confidence is not None and bundle.confidence.dim == bundle.meta.dim
    assert section["fitted"] == "build" and section["non_products"] == 160 and section["views"] == 48
    assert section["options"] == {"rows": 200, "views": 2, "non_products": 160, "reject": 0.93, "seed": 0}
    assert 0.0 < section["threshold"] < 1.0 and section["threshold"] == pytest.approx(bundle.confidence.threshold)
    # on its own (cross-fitted) photos: the threshold rejects the share asked of non-products, keeps most views
    assert section["non_products_rejected"] >= 0.9 and section["products_kept"] >= 0.9


def test_store_photos_are_found_and_photos_of_no_product_are_not(demo_bundle: Path, demo_queries: list[Path]) -> None:
    fakes = non_product_photos(40, seed=UNSEEN)
    with Retriever.open(demo_bundle) as retriever:
        real = retriever.answer(demo_queries)
        fake = retriever.answer([image for _, image in fakes])
    # the 12 demo store photos: one is answered wrong (it should not be "found"), one is right but unsure
    assert sum(answer.found for answer in real) >= len(real) - 2
    assert sum(not answer.found for answer in fake) >= 0.85 * len(fake)
    for answer in real + fake:
        confidences = [match.confidence for match in answer.matches]
        assert all(0.0 <= c <= 1.0 for c in confidences) and answer.confidence == confidences[0]
    # a right first match is far surer than the rest of its list
    assert np.median([a.matches[0].confidence for a in real]) > 0.6
    assert np.median([a.matches[1].confidence for a in real]) < 0.3


def test_eval_measures_not_found(demo_bundle: Path) -> None:
    with Retriever.open(demo_bundle) as retriever:
        report = evaluate(retriever, read_queries(DEMO / "queries.csv"), non_products=48)
    figures = report["not_found"]
    assert figures["non_product_photos"] == 48 and set(figures["rejected_by_kind"]) == set(KINDS)
    assert figures["rejected"] >= 0.85 and figures["real_kept"] >= 0.9
    assert figures["threshold"] == pytest.approx(open_bundle(demo_bundle).confidence.threshold)


def test_query_says_no_matching_product(demo_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with Retriever.open(demo_bundle) as retriever:
        fakes = [image for _, image in non_product_photos(24, seed=UNSEEN) if not retriever.answer([image])[0].found]
    fakes[0].save(tmp_path / "wall.png")
    assert main(["query", "--bundle", str(demo_bundle), str(tmp_path / "wall.png"), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    result = document["results"][0]
    assert result["found"] is False and len(result["matches"]) == 7  # the nearest items still come back
    assert result["confidence"] < document["threshold"]
    assert main(["query", "--bundle", str(demo_bundle), str(tmp_path / "wall.png")]) == 0
    out = capsys.readouterr().out
    assert "no matching product" in out and "threshold" in out


def test_a_bundle_without_a_confidence_model_answers_found(tmp_path: Path, demo_queries: list[Path]) -> None:
    from export.bundle.build import BuildOptions, build_bundle

    build_bundle(DEMO / "catalog.csv", tmp_path / "plain", BuildOptions(progress=False, calibration=None, ocr=False))
    assert "confidence" not in open_bundle(tmp_path / "plain").manifest
    with Retriever.open(tmp_path / "plain") as retriever:
        answer = retriever.answer(demo_queries[:1])[0]
        assert retriever.threshold is None
    assert answer.found and answer.confidence is None and all(m.confidence is None for m in answer.matches)
    assert answer.to_dict()["confidence"] is None


def test_a_confidence_model_is_checked_when_read(tmp_path: Path) -> None:
    model = ConfidenceModel(np.ones(8, np.float32), 0.0, (10.0, 0.5), -5.0, 0.3)
    model.save(tmp_path / "confidence.npz")
    assert ConfidenceModel.load(tmp_path / "confidence.npz", 8).threshold == pytest.approx(0.3)
    with pytest.raises(BundleError, match="8-d descriptors, the bundle's are 16-d"):
        ConfidenceModel.load(tmp_path / "confidence.npz", 16)
    np.savez(tmp_path / "bad.npz", product_weights=np.full(8, np.nan, np.float32), product_bias=0.0,
             match_coef=np.ones(2), match_bias=0.0, threshold=0.3)
    with pytest.raises(BundleError, match="not a valid confidence model"):
        ConfidenceModel.load(tmp_path / "bad.npz", 8)
    (tmp_path / "junk.npz").write_bytes(b"not an npz")
    with pytest.raises(BundleError, match="not a valid confidence model"):
        ConfidenceModel.load(tmp_path / "junk.npz", 8)


@pytest.mark.slow
def test_tune_learns_not_found_from_photos_of_products_the_catalogue_lacks(tmp_path: Path) -> None:
    import csv

    from export.bundle.build import BuildOptions, build_bundle
    from export.bundle.confidence import CalibrationOptions
    from export.bundle.tune import tune

    with open(DEMO / "catalog.csv", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        rows = [row for row in reader if row["group"] != "Oatly-Oat-Milk"]
        fields = reader.fieldnames
    catalogue = tmp_path / "catalog.csv"
    with open(catalogue, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows({**row, "image": str(DEMO / row["image"])} for row in rows)
    # fewer generated photos than the default 160: tune fits the confidence again as the build chose
    build_bundle(catalogue, tmp_path / "lacks", BuildOptions(progress=False, pictures=False,
                                                              calibration=CalibrationOptions(non_products=40)))
    report = tune(tmp_path / "lacks", DEMO / "queries.csv", tmp_path / "tuned", shrinkages=(0.5,), ks=(1,), votes=(10,))
    section = open_bundle(tmp_path / "tuned").manifest["confidence"]
    # it scores the settings on the 11 findable photos only, as eval does
    with Retriever.open(tmp_path / "tuned") as retriever:
        measured = evaluate(retriever, read_queries(DEMO / "queries.csv"), non_products=0)
    assert report.queries == 11 and measured["queries"] == 11 and measured["not_in_catalog_count"] == 1
    assert measured["map7"] == pytest.approx(report.chosen.map7, abs=1e-6)
    # the photo of the oat milk the catalogue lacks is a real "not found" case; the other 11 are products
    assert section["fitted"] == "tune" and section["labelled_photos"] == 12 and section["labelled_not_in_catalog"] == 1
    assert section["non_products"] == 40 and section["options"]["non_products"] == 40
