"""EAST export: dynamic batch/height/width, parity with PyTorch, a card the runtime detector accepts."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

torch = pytest.importorskip("torch")


def test_export_parity_and_card(tmp_path: Path) -> None:
    from export.models.east import build_east
    from export.text.export import export_text_model
    from runtime.bundle import sha256_file
    from runtime.reading.detector import TextDetector

    torch.manual_seed(0)
    model = build_east(pretrained=False)
    checkpoint = tmp_path / "checkpoint.pt"
    torch.save({"model": model.state_dict(), "config": {}, "step": 0}, checkpoint)
    from export.text.evaluate import DetectionScore

    metrics = {"synthetic": DetectionScore(images=2, true_positives=3, detections=4, ground_truth=5).to_dict()}
    path = export_text_model(checkpoint, tmp_path / "engines", metrics=metrics, training={})
    assert "| synthetic | 2 | 0.750 | 0.600 | 0.667 |" in path.with_name("east_lite0.md").read_text()
    card = json.loads(path.with_name("east_lite0.card.json").read_text())
    assert card["sha256"] == sha256_file(path) and card["task"] == "text"
    assert all(p["geometry_px"] < 0.05 for p in card["parity"])
    with TextDetector.open(path, threads=2) as detector:
        for shape in ((1, 3, 96, 160), (3, 3, 64, 64)):
            score, geometry = detector.maps(np.zeros(shape, np.float32))
            assert score.shape == (shape[0], 1, shape[2] // 4, shape[3] // 4)
            assert geometry.shape == (shape[0], 5, shape[2] // 4, shape[3] // 4)
