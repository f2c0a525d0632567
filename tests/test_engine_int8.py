"""INT8 by explicit quantisation: a Q/DQ ONNX calibrated on catalogue photos, built strongly typed by
TensorRT for RTX, and runnable by ONNX Runtime on a CPU with its Q/DQ pairs simulated (which is how its accuracy
cost is measured: ONNX Runtime's fused integer kernels saturate with 8-bit weights on CPUs without VNNI)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from runtime.backends import open_backend
from runtime.bundle import sha256_file
from runtime.describe.embedder import Embedder
from runtime.engines.plans import PlanManifest, sidecar_for
from runtime.describe.modelcard import ModelCard, card_path_for
from tests.conftest import DEMO, MODEL
from tests.engine_fixtures import ENGINES, needs_rtx

pytestmark = pytest.mark.slow


def _build_int8(model: Path, out: Path, count: int):
    from export.engine.build import EngineBuildOptions, build_engine

    options = EngineBuildOptions(flavor="rtx", precision="int8", max_batch=2, compute_capabilities=("8.6",),
                                 calibration_catalog=DEMO / "catalog.csv", calibration_count=count)
    return build_engine(model, out, options)


def test_visual_int8_plan_from_a_calibrated_qdq_model(tmp_path: Path, demo_queries: list[Path]) -> None:
    needs_rtx()
    report = _build_int8(MODEL, tmp_path, count=6)
    qdq = tmp_path / "efficientnet_lite0_imagenet-int8-qdq.onnx"
    manifest = PlanManifest.load(sidecar_for(report.plan))
    assert manifest.precision == "int8" and manifest.strongly_typed
    assert manifest.built_onnx_sha256 == sha256_file(qdq) and manifest.onnx_sha256 == sha256_file(MODEL)
    ops = [node.op_type for node in onnx.load(str(qdq)).graph.node]
    assert ops.count("QuantizeLinear") > 40 and ops.count("DequantizeLinear") > 80  # activations and weights
    card = ModelCard.load(card_path_for(qdq))
    assert card.sha256 == sha256_file(qdq) and card.raw["calibration"]["images"] == 6 and card.precision == "int8"

    fp32_card = ModelCard.load(card_path_for(MODEL))
    with open_backend(MODEL, "onnxruntime", threads=1) as fp32, open_backend(
            qdq, "onnxruntime", threads=1, simulate_quantization=True) as int8:
        a = Embedder(fp32, fp32_card, 3).embed(demo_queries[:4])
        b = Embedder(int8, card, 3).embed(demo_queries[:4])
    cosine = (a * b).sum(axis=1)
    assert np.all(cosine > 0.85) and np.all(cosine < 0.9999), cosine  # close to fp32, yet really quantised


def test_text_detector_int8_builds(tmp_path: Path) -> None:
    """EAST's scalar geometry scale must stay unquantised (TensorRT refuses a quantised constant outside a
    weight's DequantizeLinear), and photos of several aspect ratios must calibrate together."""
    needs_rtx()
    report = _build_int8(ENGINES / "east_lite0.onnx", tmp_path, count=4)
    assert PlanManifest.load(sidecar_for(report.plan)).precision == "int8"


def test_text_calibration_samples_share_one_shape() -> None:
    """ONNX Runtime's histogram calibrators (percentile, entropy) stack all samples' activations, so the
    text detector's photos of several aspect ratios are padded to one square shape."""
    pytest.importorskip("sklearn")
    from export.engine.precision import CatalogReader, calibration_images
    from runtime.describe.image import load_and_prepare

    card = ModelCard.load(card_path_for(ENGINES / "east_lite0.onnx"))
    images = calibration_images(DEMO / "catalog.csv", 24)
    assert len({load_and_prepare(p, card.input).shape for p in images}) > 1  # the photos really differ
    reader = CatalogReader(images, card)
    samples = list(iter(reader.get_next, None))
    assert len(samples) == 24 and {s["image"].shape for s in samples} == {(1, 3, 384, 384)}
    first = load_and_prepare(images[0], card.input)
    np.testing.assert_array_equal(samples[0]["image"][0, :, : first.shape[1], : first.shape[2]], first)
