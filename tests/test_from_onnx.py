"""Shipped ONNX weights back into PyTorch (export.models.from_onnx): what training deeper starts from."""
from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
import onnxruntime as ort  # noqa: E402

from export.models.manet import InferenceGraph  # noqa: E402
from export.train.manet import ManetConfig, build_model  # noqa: E402

from .conftest import ROOT  # noqa: E402

ENGINES = ROOT / "engines"


def test_manet_started_from_the_shipped_onnx_computes_what_the_onnx_computes() -> None:
    shipped = json.loads((ENGINES / "manet_lite0.card.json").read_text())["training"]["config"]
    config = ManetConfig(east_checkpoint=str(ENGINES / "east_lite0.onnx"), init_onnx=str(ENGINES / "manet_lite0.onnx"),
                         size=320, pool="srmac", head="cosine", train_from_block=11, text_scale=shipped["text_scale"])
    model = build_model(5, config).eval()
    image = np.random.default_rng(0).uniform(-1, 1, (2, 3, 320, 320)).astype(np.float32)
    expected = ort.InferenceSession(str(ENGINES / "manet_lite0.onnx")).run(None, {"image": image})
    with torch.no_grad():
        got = InferenceGraph(model)(torch.from_numpy(image))
    for name, want, have in zip(("X", "S", "T"), expected, got):
        np.testing.assert_allclose(have.numpy(), want, atol=1e-4 * max(1.0, float(np.abs(want).max())), err_msg=name)
    # every BatchNorm keeps the folded statistics in training mode too
    model.train()
    assert all(not m.training for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert all(not p.requires_grad for p in model.backbone._blocks[10].parameters())
    assert all(p.requires_grad for p in model.backbone._blocks[11].parameters())


def test_an_onnx_file_of_another_model_is_refused() -> None:
    config = ManetConfig(east_checkpoint=str(ENGINES / "east_lite0.onnx"), init_onnx=str(ENGINES / "east_lite0.onnx"))
    with pytest.raises(KeyError, match="manet.backbone"):
        build_model(5, config)
