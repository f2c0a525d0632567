"""`shadematch engine build` with TensorRT for RTX: real plans of every shipped model, built without a GPU,
and manifests that say exactly what each plan is."""
from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from runtime.bundle import sha256_file
from runtime.engines.plans import PlanManifest, sidecar_for
from runtime.errors import BackendError, EngineError
from runtime.describe.modelcard import ModelCard, card_path_for
from tests.conftest import DEFAULT_MODEL
from tests.engine_fixtures import ENGINES, needs_rtx, shipped_models

pytestmark = pytest.mark.slow


def test_every_shipped_model_is_found_by_its_card() -> None:
    names = {model.name for model in shipped_models()}
    assert {"manet_lite0.onnx", "efficientnet_lite0_imagenet.onnx", "east_lite0.onnx"} <= names
    assert all(model.is_file() for model in shipped_models())


@pytest.mark.parametrize("model", shipped_models(), ids=lambda m: m.stem)
def test_plan_manifest_describes_the_plan(rtx_plans: dict[str, Path], model: Path) -> None:
    import tensorrt_rtx

    card = ModelCard.load(card_path_for(model))
    plan = rtx_plans[card.name]
    manifest = PlanManifest.load(sidecar_for(plan))
    assert plan.stat().st_size == manifest.plan_bytes > 1_000_000  # the weights are in the plan
    assert manifest.plan_sha256 == sha256_file(plan)
    assert manifest.onnx_sha256 == sha256_file(model) == card.sha256
    assert (manifest.flavor, manifest.library_module, manifest.library_version) == ("rtx", "tensorrt_rtx", tensorrt_rtx.__version__)
    assert manifest.compute_capabilities == ("8.0", "8.6", "8.9", "12.0", "12.1")
    assert manifest.precision == "fp32" and manifest.strongly_typed and manifest.max_batch == 4
    assert set(manifest.outputs) == set(card.outputs.values())
    assert all(spec["dtype"] == "float32" for spec in manifest.outputs.values())
    profile = manifest.inputs[card.input.name]
    if card.input.resize == "longer_side_multiple_32":  # EAST: any H, W multiple of 32 up to the card's size
        side = max(card.input.height, card.input.width)
        assert profile["shape"] == [-1, 3, -1, -1]
        assert (profile["min"], profile["opt"], profile["max"]) == ([1, 3, 32, 32], [1, 3, side, side], [4, 3, side, side])
    else:
        size = [3, card.input.height, card.input.width]
        assert (profile["min"], profile["opt"], profile["max"]) == ([1, *size], [1, *size], [4, *size])
    raw = json.loads(sidecar_for(plan).read_text())
    assert raw["format"] == "shadematch-plan" and raw["format_version"] == 1


def test_turing_needs_its_own_plan(rtx_plans: dict[str, Path]) -> None:
    manifest = PlanManifest.load(sidecar_for(rtx_plans[f"{DEFAULT_MODEL.stem}@7.5"]))
    assert manifest.compute_capabilities == ("7.5",)
    assert manifest.plan.endswith(".sm75.plan")


def test_hopper_is_not_an_rtx_target(tmp_path: Path) -> None:
    needs_rtx()
    from export.engine.build import EngineBuildOptions, build_engine

    with pytest.raises(BackendError, match=r"cannot target compute capability 9\.0 \(it knows .*8\.6"):
        build_engine(ENGINES / "east_lite0.onnx", tmp_path, EngineBuildOptions(flavor="rtx", compute_capabilities=("9.0",)))
    assert not list(tmp_path.glob("*.plan"))


def _broken_model(tmp_path: Path) -> Path:
    """A model whose second node is an operator no ONNX parser knows, with a valid card."""
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, 32, 32])
    out = helper.make_tensor_value_info("X", TensorProto.FLOAT, None)
    nodes = [helper.make_node("Relu", ["image"], ["r"], name="first_relu"),
             helper.make_node("FrobnicateShade", ["r"], ["X"], name="mystery_node", domain="shadematch.test")]
    graph = helper.make_graph(nodes, "broken", [image], [out])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("shadematch.test", 1)])
    path = tmp_path / "broken.onnx"
    onnx.save(model, str(path))
    card = {"name": "broken", "task": "visual", "file": path.name, "sha256": sha256_file(path),
            "input": {"name": "image", "height": 32, "width": 32, "mean": [0, 0, 0], "std": [1, 1, 1],
                      "resize": "shorter_side_center_crop"},
            "outputs": {"features": "X", "saliency": "X"}}
    card_path_for(path).write_text(json.dumps(card))
    return path


def test_parser_error_names_the_node(tmp_path: Path) -> None:
    needs_rtx()
    from export.engine.build import EngineBuildOptions, build_engine

    with pytest.raises(EngineError, match=r"cannot parse broken\.onnx: node 1 'mystery_node' \(FrobnicateShade\)"):
        build_engine(_broken_model(tmp_path), tmp_path / "out", EngineBuildOptions(flavor="rtx"))
    assert not list((tmp_path / "out").glob("*.plan*"))  # nothing half-written


def test_card_must_describe_the_model(tmp_path: Path) -> None:
    needs_rtx()
    from export.engine.build import EngineBuildOptions, build_engine
    from runtime.errors import ModelCardError

    model = _broken_model(tmp_path)
    model.write_bytes(model.read_bytes() + b"\0")
    with pytest.raises(ModelCardError, match="sha256 does not match broken.onnx"):
        build_engine(model, tmp_path / "out", EngineBuildOptions(flavor="rtx"))


def test_full_tensorrt_missing_is_a_clear_error(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    try:
        import tensorrt  # noqa: F401
        pytest.skip("full TensorRT is installed here")
    except ImportError:
        pass
    from export.engine.build import EngineBuildOptions, build_engine

    with pytest.raises(BackendError, match=r"tensorrt is not installed.*shadematch\[gpu\]"):
        build_engine(ENGINES / "east_lite0.onnx", tmp_path, EngineBuildOptions(flavor="tensorrt"))


def test_cli_builds_every_shipped_model_in_fp16(rtx_plans: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from runtime.cli import main

    models = [str(m) for m in shipped_models()]
    assert main(["engine", "build", "--onnx", *models, "--flavor", "rtx", "--precision", "fp16",
                 "--compute-capability", "8.6", "8.9", "--max-batch", "2", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert printed.count("built ") == len(models)
    for model in shipped_models():
        card = ModelCard.load(card_path_for(model))
        plan = tmp_path / f"{card.name}.rtx.fp16.sm86-sm89.plan"
        manifest = PlanManifest.load(sidecar_for(plan))
        assert manifest.precision == "fp16" and manifest.compute_capabilities == ("8.6", "8.9")
        # fp16 came from the ONNX (strong typing): the parsed model differs from the source, the I/O does not
        assert manifest.built_onnx_sha256 != manifest.onnx_sha256
        assert all(spec["dtype"] == "float32" for spec in manifest.outputs.values())
        fp32 = PlanManifest.load(sidecar_for(rtx_plans[card.name]))
        assert manifest.plan_bytes < 0.7 * fp32.plan_bytes  # half-size weights
