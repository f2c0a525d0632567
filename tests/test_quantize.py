"""INT8 for the CPU (`shadematch quantize`, `build --precision int8`): the quantised model, its card, and bundles
that use it for the catalogue and the queries alike."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest

from runtime.backends import open_backend
from runtime.backends.cpu import int8_dot_product
from runtime.bundle import sha256_file
from runtime.describe.embedder import Embedder
from runtime.describe.modelcard import ModelCard, card_path_for, quantized_path
from runtime.errors import EngineError, ModelCardError, ShadematchError
from runtime.retriever import Retriever
from tests.conftest import DEFAULT_MODEL, DEMO, MODEL

pytest.importorskip("sklearn")
from export.bundle.build import BuildOptions, build_bundle, model_at_precision  # noqa: E402
from export.onnx.quantize import quantize_for_cpu  # noqa: E402

#: 8-bit INT8 weights are exact only with an INT8 dot-product instruction (runtime.backends.cpu); elsewhere builds
#: choose float32 and these comparisons would measure int16 saturation, not the quantiser.
needs_dot_product = pytest.mark.skipif(int8_dot_product() is None, reason="this CPU has no INT8 dot-product instruction")


@pytest.fixture(scope="module")
def trunk_int8(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ImageNet trunk quantised on 8 demo catalogue photos, beside a copy of its float32 original."""
    folder = tmp_path_factory.mktemp("int8")
    for path in (MODEL, card_path_for(MODEL)):
        shutil.copy(path, folder / path.name)
    return quantize_for_cpu(folder / MODEL.name, DEMO / "catalog.csv", folder, count=8).model


def test_quantised_model_has_its_own_card_naming_its_parent(trunk_int8: Path) -> None:
    card = ModelCard.load(card_path_for(trunk_int8))
    parent = ModelCard.load(card_path_for(MODEL))
    assert trunk_int8 == quantized_path(trunk_int8.with_name(MODEL.name))
    assert card.precision == "int8" and parent.precision == "fp32"
    assert card.sha256 == sha256_file(trunk_int8) and card.file == trunk_int8.name
    assert card.raw["quantized_from"] == {"name": parent.name, "file": parent.file, "sha256": parent.sha256}
    assert card.raw["calibration"]["images"] == 8 and card.raw["calibration"]["method"] == "minmax"
    assert card.input == parent.input and card.outputs == parent.outputs and "metrics" not in card.raw
    ops = [node.op_type for node in onnx.load(str(trunk_int8)).graph.node]
    assert ops.count("QuantizeLinear") > 40 and ops.count("DequantizeLinear") > 80
    assert trunk_int8.stat().st_size < MODEL.stat().st_size / 3  # int8 weights


@needs_dot_product
def test_quantised_descriptors_stay_close_to_float32(trunk_int8: Path, demo_queries: list[Path]) -> None:
    card = ModelCard.load(card_path_for(MODEL))
    with open_backend(MODEL, "onnxruntime", threads=1) as fp32, open_backend(trunk_int8, "onnxruntime", threads=1) as int8:
        a = Embedder(fp32, card, 3).embed(demo_queries)
        b = Embedder(int8, card, 3).embed(demo_queries)
    cosine = np.sum(a * b, axis=1)
    assert cosine.min() > 0.95, cosine
    # the nearest other query of each query is mostly the same one
    agree = np.mean(np.argsort(-(a @ a.T), axis=1)[:, 1] == np.argsort(-(b @ b.T), axis=1)[:, 1])
    assert agree >= 0.75


def test_precision_resolves_to_the_sibling_or_the_parent(trunk_int8: Path, tmp_path: Path) -> None:
    parent = trunk_int8.with_name(MODEL.name)
    assert model_at_precision(parent, "int8") == trunk_int8
    assert model_at_precision(trunk_int8, "fp32") == parent
    assert model_at_precision(parent, "fp32") == parent and model_at_precision(parent, None) == parent
    lonely = tmp_path / MODEL.name
    for path in (MODEL, card_path_for(MODEL)):
        shutil.copy(path, tmp_path / path.name)
    with pytest.raises(ModelCardError, match="shadematch quantize"):
        model_at_precision(lonely, "int8")
    with pytest.raises(ModelCardError, match="unknown precision"):
        model_at_precision(lonely, "fp16")


def test_auto_precision_is_int8_only_where_the_cpu_multiplies_it_exactly(
        trunk_int8: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from export.bundle import build

    parent = trunk_int8.with_name(MODEL.name)
    monkeypatch.setattr(build, "int8_dot_product", lambda: "avx512_vnni")
    assert model_at_precision(parent, "auto") == trunk_int8 and model_at_precision(trunk_int8, "auto") == trunk_int8
    lonely = tmp_path / MODEL.name
    for path in (MODEL, card_path_for(MODEL)):
        shutil.copy(path, tmp_path / path.name)
    with caplog.at_level("INFO", logger="shadematch"):
        assert model_at_precision(lonely, "auto") == lonely
        monkeypatch.setattr(build, "int8_dot_product", lambda: None)
        assert model_at_precision(parent, "auto") == parent
    said = [record.getMessage() for record in caplog.records]
    assert len(said) == 2 and "no INT8 sibling" in said[0] and "no INT8 dot-product instruction" in said[1]


def test_build_options_default_to_auto_precision() -> None:
    assert BuildOptions().precision == "auto"


def test_an_int8_model_is_not_quantised_again(trunk_int8: Path) -> None:
    with pytest.raises(ShadematchError, match="already INT8"):
        quantize_for_cpu(trunk_int8, DEMO / "catalog.csv", trunk_int8.parent)


def test_tensorrt_plans_come_from_the_float32_parent(trunk_int8: Path, tmp_path: Path) -> None:
    from export.engine.build import EngineBuildOptions, build_engine

    with pytest.raises(EngineError, match="float32 parent"):
        build_engine(trunk_int8, tmp_path, EngineBuildOptions(flavor="rtx"))


def test_shipped_int8_manet_is_the_quantised_default_model() -> None:
    shipped = quantized_path(DEFAULT_MODEL)
    card = ModelCard.load(card_path_for(shipped))
    assert card.sha256 == sha256_file(shipped) and card.precision == "int8"
    assert card.raw["quantized_from"]["sha256"] == sha256_file(DEFAULT_MODEL)
    assert {"instore_map7", "catalogue_only_map7"} <= set(card.raw["metrics"])


@needs_dot_product
def test_int8_bundle_answers_the_demo_queries_as_the_float32_one(demo_queries: list[Path], tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    built = {}
    for precision in ("int8", "fp32"):
        built[precision] = tmp_path / precision
        build_bundle(DEMO / "catalog.csv", built[precision], BuildOptions(progress=False, calibration=None,
                     precision=precision, ocr=False, pictures=False, query_views=None))
    manifest = json.loads((built["int8"] / "manifest.json").read_text())
    assert manifest["model"]["name"] == "manet_lite0_int8"
    with Retriever.open(built["int8"]) as int8, Retriever.open(built["fp32"]) as fp32:
        assert int8.bundle.card.precision == "int8" and fp32.bundle.card.precision == "fp32"
        firsts_int8 = [m[0].group for m in int8.query_batch(demo_queries)]
        firsts_fp32 = [m[0].group for m in fp32.query_batch(demo_queries)]
    assert sum(a == b for a, b in zip(firsts_int8, firsts_fp32)) >= len(demo_queries) - 1
    # the same INT8 bundle on a CPU without an INT8 dot-product says so once, and still answers
    import runtime.retriever

    monkeypatch.setattr(runtime.retriever, "int8_dot_product", lambda: None)
    with caplog.at_level("INFO", logger="shadematch"), Retriever.open(built["int8"]) as int8:
        assert int8.query(demo_queries[0])
    said = [r.getMessage() for r in caplog.records if "dot-product" in r.getMessage()]
    assert len(said) == 1 and "--precision fp32" in said[0]
