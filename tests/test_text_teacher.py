"""PP-OCR teacher pseudo-labels on real photos, and `text-eval` scoring the shipped EAST against them."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("rapidocr_onnxruntime")
pytest.importorskip("cv2")

from .conftest import DEMO  # noqa: E402

PHOTOS = [DEMO / "images" / "arla-standard-milk_iconic.jpg", DEMO / "images" / "god-morgon-orange-juice_iconic.jpg"]


@pytest.fixture(scope="module")
def labelled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from export.text.teacher import pseudo_label

    return pseudo_label(PHOTOS, tmp_path_factory.mktemp("teacher") / "labels", progress=False)


def test_teacher_labels_are_valid_samples(labelled: Path) -> None:
    from export.text.labels import read_samples

    samples = read_samples(labelled)
    assert len(samples) == 2
    assert sum(len(s.quads) for s in samples) >= 2  # both cartons carry printed text
    records = [json.loads(line) for line in (labelled / "labels.jsonl").read_text().splitlines()]
    assert [r["source"] for r in records] == [str(p) for p in PHOTOS]
    assert not list(labelled.parent.glob(".labels.tmp-*"))


def test_text_eval_scores_the_shipped_model(labelled: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from runtime.cli import main

    assert main(["text-eval", "--data", str(labelled), "--json"]) == 0
    score = json.loads(capsys.readouterr().out)
    assert score["images"] == 2 and score["ground_truth"] >= 1
    assert 0.0 <= score["f_score"] <= 1.0 and score["true_positives"] >= 1
