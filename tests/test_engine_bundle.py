"""Bundles that carry TensorRT plans for several GPU generations; bundles without plans open as before."""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from runtime import Retriever
from runtime.bundle import open_bundle, sha256_file
from runtime.engines.plans import sidecar_for
from runtime.errors import BundleError
from tests.conftest import DEMO
from tests.test_engine_selection import HAS_PYCUDA, VISUAL

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def engine_bundle(rtx_plans: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    from export.bundle.build import BuildOptions, build_bundle

    out = tmp_path_factory.mktemp("engine-bundle") / "bundle"
    plans = (rtx_plans[VISUAL], rtx_plans[f"{VISUAL}@7.5"])
    # One query view, as the session's demo bundle it is compared with.
    build_bundle(DEMO / "catalog.csv", out, BuildOptions(progress=False, calibration=None, engines=plans,
                                                         query_views=None))
    return out


@pytest.fixture(scope="module")
def plain_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The engine bundle's build without plans, in float32 as plans keep it (`--precision auto` is INT8 only
    where no plans are carried)."""
    from export.bundle.build import BuildOptions, build_bundle

    out = tmp_path_factory.mktemp("plain-bundle") / "bundle"
    build_bundle(DEMO / "catalog.csv", out, BuildOptions(progress=False, calibration=None, query_views=None,
                                                         precision="fp32"))
    return out


def test_plans_are_listed_and_checksummed_like_every_file(engine_bundle: Path, rtx_plans: dict[str, Path]) -> None:
    bundle = open_bundle(engine_bundle)
    names = [rtx_plans[VISUAL].name, rtx_plans[f"{VISUAL}@7.5"].name]
    assert [plan.name for plan in bundle.plans] == names
    files = bundle.manifest["files"]
    for name in names:
        assert files[f"engines/{name}"]["sha256"] == sha256_file(rtx_plans[VISUAL].parent / name)
        assert f"engines/{name}.json" in files
    entries = bundle.manifest["engines"]
    assert [e["compute_capabilities"] for e in entries] == [["8.0", "8.6", "8.9", "12.0", "12.1"], ["7.5"]]
    assert bundle.backend == "auto"


@pytest.mark.skipif(HAS_PYCUDA, reason="checks the CPU fall-back; pycuda is installed here")
def test_auto_on_a_cpu_queries_through_onnxruntime(engine_bundle: Path, plain_bundle: Path, demo_queries: list[Path], caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="shadematch"):
        with Retriever.open(engine_bundle) as retriever, Retriever.open(plain_bundle) as plain:
            assert retriever.backend.kind == "onnxruntime" and retriever.bundle.card.precision == "fp32"
            assert [m.id for m in retriever.query(demo_queries[0])] == [m.id for m in plain.query(demo_queries[0])]
    assert any(r.levelno == logging.WARNING and "visual.onnx" in r.getMessage() for r in caplog.records)


def test_tampered_plan_is_a_checksum_error(engine_bundle: Path, tmp_path: Path, rtx_plans: dict[str, Path]) -> None:
    copy = shutil.copytree(engine_bundle, tmp_path / "b")
    plan = copy / "engines" / rtx_plans[VISUAL].name
    data = bytearray(plan.read_bytes())
    data[len(data) // 2] ^= 0xFF
    plan.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=f"checksum mismatch for engines/{rtx_plans[VISUAL].name}"):
        open_bundle(copy)


def test_unlisted_engine_file_is_refused(engine_bundle: Path, tmp_path: Path, rtx_plans: dict[str, Path]) -> None:
    copy = shutil.copytree(engine_bundle, tmp_path / "b")
    shutil.copy(rtx_plans["east_lite0"], copy / "engines")
    with pytest.raises(BundleError, match=r"files in engines/ that the manifest does not list: engines/east_lite0"):
        open_bundle(copy)


def test_plan_of_another_model_is_refused_and_nothing_is_written(rtx_plans: dict[str, Path], tmp_path: Path) -> None:
    from export.bundle.build import BuildOptions, build_bundle

    with pytest.raises(BundleError, match="was built from another model .*east_lite0.*not the bundle's manet_lite0"):
        build_bundle(DEMO / "catalog.csv", tmp_path / "b", BuildOptions(progress=False, calibration=None, engines=(rtx_plans["east_lite0"],)))
    assert not (tmp_path / "b").exists()


def test_plan_that_does_not_match_its_sidecar_is_refused(rtx_plans: dict[str, Path], tmp_path: Path) -> None:
    from export.bundle.build import BuildOptions, build_bundle

    plan = shutil.copy(rtx_plans[VISUAL], tmp_path / rtx_plans[VISUAL].name)
    shutil.copy(sidecar_for(rtx_plans[VISUAL]), tmp_path)
    Path(plan).write_bytes(Path(plan).read_bytes()[:-1] + b"\0")
    with pytest.raises(BundleError, match="checksum does not match its manifest"):
        build_bundle(DEMO / "catalog.csv", tmp_path / "b", BuildOptions(progress=False, calibration=None, engines=(Path(plan),)))


def _edit_manifest(bundle: Path, edit) -> None:
    path = bundle / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))


def test_bundle_written_before_engines_opens_as_before(bundle_copy: Path, demo_queries: list[Path]) -> None:
    def strip(manifest: dict) -> None:
        manifest.pop("engines")
        manifest.pop("backend")

    _edit_manifest(bundle_copy, strip)
    bundle = open_bundle(bundle_copy)
    assert bundle.plans == [] and bundle.backend == "auto"
    with Retriever.open(bundle_copy) as retriever:
        assert len(retriever.query(demo_queries[0])) == 7


def test_bundle_backend_is_the_default_and_is_checked(bundle_copy: Path, caplog: pytest.LogCaptureFixture) -> None:
    _edit_manifest(bundle_copy, lambda m: m.update(backend="onnxruntime"))
    with caplog.at_level(logging.INFO, logger="shadematch"):
        with Retriever.open(bundle_copy) as retriever:
            assert retriever.backend.kind == "onnxruntime"
    assert not [r for r in caplog.records if r.name == "shadematch"]  # ONNX Runtime asked for: nothing tried first
    _edit_manifest(bundle_copy, lambda m: m.update(backend="cuda-magic"))
    with pytest.raises(BundleError, match="unknown backend 'cuda-magic'"):
        open_bundle(bundle_copy)
