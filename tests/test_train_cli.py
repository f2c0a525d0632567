"""`shadematch train` and `shadematch export-model --manet` wired end to end on the demo catalogue."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("cv2")

from runtime.cli import main  # noqa: E402

from .conftest import DEMO  # noqa: E402

pytestmark = pytest.mark.slow


def test_train_then_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torch.set_num_threads(1)
    run = tmp_path / "run"
    assert main(["train", "--catalog", str(DEMO / "catalog.csv"), "--out", str(run), "--no-text", "--steps", "2",
                 "--batch-size", "4", "--size", "64", "--views", "1", "--catalogue-views", "1"]) == 0
    out = capsys.readouterr().out
    assert "24 training images in 12 categories (12 catalogue cut-outs)" in out
    assert json.loads((run / "train_log.jsonl").read_text().splitlines()[-1])["step"] == 2
    assert main(["export-model", "--manet", str(run / "checkpoint.pt"), "--out", str(tmp_path / "engines"),
                 "--size", "64"]) == 0
    card = json.loads((tmp_path / "engines" / "manet_lite0.card.json").read_text())
    assert card["training"]["steps_done"] == 2 and card["input"]["height"] == 64


def test_train_needs_a_text_model_or_no_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--catalog", str(DEMO / "catalog.csv"), "--out", str(tmp_path / "run")]) == 1
    assert "--east CHECKPOINT" in capsys.readouterr().err
