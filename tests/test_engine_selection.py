"""Which plan runs where: the pure rules (manifest vs device and library, several GPU generations) on the
manifests of real TensorRT for RTX plans, and the fall-back to ONNX Runtime when no plan can run."""
from __future__ import annotations

import importlib.util
import logging
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from runtime.backends import AUTO_ORDER, backend_names, open_backend
from runtime.bundle import sha256_file
from runtime.engines.plans import DeviceInfo, NoPlanError, PlanManifest, check_plan, choose_plan, select_plan, sidecar_for
from runtime.errors import BackendError
from tests.conftest import DEFAULT_MODEL

#: The default visual model of `shadematch build` (what the demo bundle is built with).
VISUAL = DEFAULT_MODEL.stem
HAS_PYCUDA = importlib.util.find_spec("pycuda") is not None


def _manifest(plans: dict[str, Path], key: str) -> PlanManifest:
    return PlanManifest.load(sidecar_for(plans[key]))


def _rtx_device(manifest: PlanManifest, capability: str, name: str = "test GPU") -> DeviceInfo:
    return DeviceInfo(name, capability, "rtx", manifest.library_version)


def test_tensorrt_is_a_backend_choice_tried_first_by_auto() -> None:
    assert backend_names() == ["auto", "tensorrt", "onnxruntime"]
    assert AUTO_ORDER == ("tensorrt", "onnxruntime")


def test_plan_fits_only_its_library_generations_and_model(rtx_plans: dict[str, Path]) -> None:
    plan = _manifest(rtx_plans, VISUAL)
    onnx_sha = sha256_file(DEFAULT_MODEL)
    assert check_plan(plan, _rtx_device(plan, "8.9", "RTX 4090"), onnx_sha) is None
    assert check_plan(plan, _rtx_device(plan, "12.0", "RTX 5090"), onnx_sha) is None
    hopper = check_plan(plan, _rtx_device(plan, "9.0", "H100"), onnx_sha)
    assert "targets compute capability 8.0, 8.6, 8.9, 12.0, 12.1, the GPU H100 is 9.0" in hopper
    full = check_plan(plan, DeviceInfo("A100", "8.0", "tensorrt", "10.13.0"), onnx_sha)
    assert "built with tensorrt_rtx (flavour rtx), this machine runs tensorrt" in full
    older = check_plan(plan, replace(_rtx_device(plan, "8.6"), library_version="1.0.0.21"), onnx_sha)
    assert f"built with tensorrt_rtx {plan.library_version}, this machine has 1.0.0.21" in older
    other_model = check_plan(plan, _rtx_device(plan, "8.6"), "0" * 64)
    assert "was built from another model" in other_model


def test_bundle_of_two_generations_picks_the_one_of_the_device(rtx_plans: dict[str, Path]) -> None:
    portable, turing = _manifest(rtx_plans, VISUAL), _manifest(rtx_plans, f"{VISUAL}@7.5")
    chosen, passed = select_plan([portable, turing], _rtx_device(portable, "7.5", "RTX 2080 Ti"))
    assert chosen == turing and len(passed) == 1 and "7.5" in passed[0]
    chosen, _ = select_plan([turing, portable], _rtx_device(portable, "8.6", "RTX 3090"))
    assert chosen == portable
    chosen, passed = select_plan([portable, turing], _rtx_device(portable, "9.0", "H100"))
    assert chosen is None and len(passed) == 2


def test_the_most_specialised_fitting_plan_wins(rtx_plans: dict[str, Path]) -> None:
    portable = _manifest(rtx_plans, VISUAL)
    ada_only = replace(portable, plan="ada.plan", compute_capabilities=("8.9",))
    chosen, _ = select_plan([portable, ada_only], _rtx_device(portable, "8.9"))
    assert chosen.plan == "ada.plan"


def _plan_folder(rtx_plans: dict[str, Path], tmp_path: Path) -> Path:
    """A copy of the shipped visual model with its plans in build/ beside it (engine build's layout)."""
    shutil.copy(DEFAULT_MODEL, tmp_path / DEFAULT_MODEL.name)
    shutil.copy(DEFAULT_MODEL.with_name(DEFAULT_MODEL.stem + ".card.json"), tmp_path)
    (tmp_path / "build").mkdir()
    for key in (VISUAL, f"{VISUAL}@7.5", "east_lite0"):
        for path in (rtx_plans[key], sidecar_for(rtx_plans[key])):
            shutil.copy(path, tmp_path / "build")
    return tmp_path / DEFAULT_MODEL.name


def test_choose_plan_reads_the_sidecars_beside_the_model(rtx_plans: dict[str, Path], tmp_path: Path) -> None:
    model = _plan_folder(rtx_plans, tmp_path)
    version = _manifest(rtx_plans, VISUAL).library_version
    plan, manifest, device = choose_plan(model, lambda flavor: DeviceInfo("RTX 2080", "7.5", flavor, version))
    assert plan == tmp_path / "build" / rtx_plans[f"{VISUAL}@7.5"].name and manifest.model_name == VISUAL
    with pytest.raises(BackendError, match=r"fits this machine: .*another model.*GPU H100 is 9\.0"):
        choose_plan(model, lambda flavor: DeviceInfo("H100", "9.0", flavor, version))

    def no_gpu(flavor: str) -> DeviceInfo:
        raise BackendError("no usable CUDA GPU: cuInit failed")

    with pytest.raises(BackendError, match="rtx plans cannot run here: no usable CUDA GPU"):
        choose_plan(model, no_gpu)
    (tmp_path / "build" / "bad.plan.json").write_text("{not json")
    with pytest.raises(BackendError, match=r"bad\.plan\.json: unreadable plan manifest"):
        choose_plan(model, lambda flavor: DeviceInfo("H100", "9.0", flavor, version))
    with pytest.raises(NoPlanError, match=r"no TensorRT plan for elsewhere\.onnx"):
        choose_plan(DEFAULT_MODEL.with_name("elsewhere.onnx"), no_gpu)


@pytest.mark.skipif(HAS_PYCUDA, reason="checks the CPU fall-back; pycuda is installed here")
def test_auto_falls_back_to_onnxruntime_and_logs_why(rtx_plans: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    model = _plan_folder(rtx_plans, tmp_path)
    with caplog.at_level(logging.INFO, logger="shadematch"):
        with open_backend(model, "auto") as backend:
            assert backend.kind == "onnxruntime"
    warning = [r for r in caplog.records if r.name == "shadematch" and r.levelno == logging.WARNING]
    assert len(warning) == 1 and "backend tensorrt not used" in warning[0].getMessage()
    assert "pycuda is not installed" in warning[0].getMessage()
    with pytest.raises(BackendError, match="pycuda is not installed.*pip install pycuda"):
        open_backend(model, "tensorrt")


def test_no_plan_is_logged_as_information_not_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    shutil.copy(DEFAULT_MODEL, tmp_path / DEFAULT_MODEL.name)
    with caplog.at_level(logging.INFO, logger="shadematch"):
        with open_backend(tmp_path / DEFAULT_MODEL.name, "auto") as backend:
            assert backend.kind == "onnxruntime"
    records = [r for r in caplog.records if r.name == "shadematch"]
    assert [r.levelno for r in records] == [logging.INFO] and "no TensorRT plan" in records[0].getMessage()
    with pytest.raises(NoPlanError):
        open_backend(tmp_path / DEFAULT_MODEL.name, "tensorrt")


#: Words that make a log line read like a fault to whoever starts a kiosk.
FAULT_WORDS = ("error", "fail", "cannot", "not found", "warning", "exception", "traceback")


def _calm_choice(records: list[logging.LogRecord]) -> str:
    """The one line "auto" logged, checked to be a calm INFO line naming ONNX Runtime on the CPU."""
    lines = [r for r in records if r.name == "shadematch"]
    assert [r.levelno for r in lines] == [logging.INFO], [r.getMessage() for r in lines]
    message = lines[0].getMessage()
    assert message.startswith("backend: ONNX Runtime (CPU) for visual.onnx; no TensorRT plan for this machine")
    assert not [word for word in FAULT_WORDS if word in message.lower()]
    return message


def test_a_cpu_start_logs_one_calm_line(demo_bundle: Path, caplog: pytest.LogCaptureFixture) -> None:
    """What `shadematch kiosk --bundle B` logs on a machine without TensorRT, for a bundle without plans."""
    with caplog.at_level(logging.DEBUG, logger="shadematch"):
        with open_backend(demo_bundle / "models" / "visual.onnx", "auto") as backend:
            assert backend.kind == "onnxruntime"
    _calm_choice(caplog.records)


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="full TensorRT is installed here")
def test_plans_for_a_gpu_on_a_machine_without_tensorrt_are_calm_too(bundle_copy: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A bundle carrying full-TensorRT plans for the GPU kiosks of a fleet, started on a CPU-only one."""
    model = bundle_copy / "models" / "visual.onnx"
    manifest = PlanManifest(
        plan="visual_sm90.plan", plan_sha256="0" * 64, plan_bytes=1, model_name="visual", task="visual",
        onnx_sha256=sha256_file(model), flavor="tensorrt", library_module="tensorrt", library_version="10.9.0",
        compute_capabilities=("9.0",), precision="fp32", strongly_typed=True, max_batch=16, inputs={}, outputs={})
    (bundle_copy / "engines").mkdir(exist_ok=True)
    manifest.save(bundle_copy / "engines" / "visual_sm90.plan.json")
    with caplog.at_level(logging.DEBUG, logger="shadematch"):
        with open_backend(model, "auto") as backend:
            assert backend.kind == "onnxruntime"
    _calm_choice(caplog.records)
    with pytest.raises(NoPlanError, match=r"can run on this machine: tensorrt plans: TensorRT is not available"):
        open_backend(model, "tensorrt")
