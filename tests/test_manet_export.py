"""MANet export: X, S (runtime contract) and T, parity with PyTorch, and a bundle built with it answers."""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from .conftest import DEMO  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def manet_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from export.models.east import build_east
    from export.train.checkpoint import save_checkpoint
    from export.train.manet import ManetConfig, build_model

    root = tmp_path_factory.mktemp("manet")
    torch.manual_seed(0)
    east = root / "east.pt"
    torch.save({"model": build_east(pretrained=False).state_dict(), "step": 0, "config": {}}, east)
    # The shipped recipe's options: EAST at half scale inside the graph, cosine head (not exported).
    config = ManetConfig(east_checkpoint=str(east), text_scale=0.5, head="cosine", pool="gem")
    model = build_model(12, config, pretrained=True)
    checkpoint = root / "checkpoint.pt"
    save_checkpoint(checkpoint, 0, {"num_classes": 12, **asdict(config)}, model=model)
    return checkpoint


def test_export_writes_contract_card_and_parity(manet_checkpoint: Path, tmp_path: Path) -> None:
    from export.onnx.manet import export_manet_model
    from runtime.backends import open_backend
    from runtime.bundle import sha256_file

    path = export_manet_model(manet_checkpoint, tmp_path, size=128)
    card = json.loads(path.with_name("manet_lite0.card.json").read_text())
    assert card["sha256"] == sha256_file(path)
    assert card["outputs"] == {"features": "X", "saliency": "S", "text": "T"}
    assert all(p["X_rel"] < 1e-3 for p in card["parity"])
    # issue 13, fault 9: the card names the text branch's checkpoint by name and sha256, not by this machine's path
    east = manet_checkpoint.parent / "east.pt"
    assert card["training"]["config"]["east_checkpoint"] == {"name": "east.pt", "sha256": sha256_file(east)}
    assert str(manet_checkpoint.parent) not in path.with_name("manet_lite0.card.json").read_text()
    assert str(manet_checkpoint.parent) not in path.with_name("manet_lite0.md").read_text()
    with open_backend(path, threads=2) as backend:
        out = backend.run({"image": np.zeros((2, 3, 128, 128), np.float32)})
    assert out["X"].shape == (2, 1280, 4, 4) and out["S"].shape == out["T"].shape == (2, 1, 4, 4)
    assert (out["S"] >= 0).all() and (out["S"] <= 1).all()


def test_bundle_with_the_manet_model_answers(manet_checkpoint: Path, tmp_path: Path) -> None:
    from export.bundle.build import BuildOptions, build_bundle
    from export.onnx.manet import export_manet_model
    from runtime import Retriever

    model = export_manet_model(manet_checkpoint, tmp_path / "engines", size=128)
    build_bundle(DEMO / "catalog.csv", tmp_path / "bundle", BuildOptions(model=model, progress=False, calibration=None))
    with Retriever.open(tmp_path / "bundle", threads=2) as retriever:
        item = retriever.bundle.catalog[0]
        matches = retriever.query(item.image)
    assert len(matches) == 7 and matches[0].id == item.id
