"""Shared fixtures: the demo bundle, built once per test session from the shipped demo catalogue."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "export" / "demo"
MODEL = ROOT / "engines" / "efficientnet_lite0_imagenet.onnx"
#: What `shadematch build` uses by default (export.bundle.build.DEFAULT_MODEL; tests/test_build.py checks they agree),
#: so the model of the demo bundle.
DEFAULT_MODEL = ROOT / "engines" / "manet_lite0.onnx"


@pytest.fixture(scope="session")
def demo_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle of the 24-item demo catalogue (exact search), built with the default options but one query view:
    the suite runs hundreds of queries through it, and the default's zooms would triple their visual model's cost
    (runtime.describe.views; the default build's views have their own tests, test_query_views, and `shadematch
    demo` runs them in test_demo). Tests must not modify it: copy it first."""
    pytest.importorskip("sklearn")
    from export.bundle.build import BuildOptions, build_bundle

    out = tmp_path_factory.mktemp("bundles") / "demo"
    build_bundle(DEMO / "catalog.csv", out, BuildOptions(progress=False, query_views=None))
    return out


@pytest.fixture(scope="session")
def views_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo catalogue's bundle as `build` makes it by default (query views included), without the confidence
    model and pictures (not what its tests look at). Tests must not modify it."""
    pytest.importorskip("sklearn")
    from export.bundle.build import BuildOptions, build_bundle

    out = tmp_path_factory.mktemp("bundles") / "views"
    build_bundle(DEMO / "catalog.csv", out, BuildOptions(progress=False, calibration=None, pictures=False))
    return out


@pytest.fixture(scope="session")
def gtin_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo catalogue with an EAN-13 per product (tests/barcode_photos.py), built as demo_bundle is: its
    queries read barcodes. Tests must not modify it."""
    pytest.importorskip("sklearn")
    from export.bundle.build import BuildOptions, build_bundle
    from tests.barcode_photos import write_gtin_catalogue

    folder = tmp_path_factory.mktemp("bundles")
    out = folder / "gtin"
    build_bundle(write_gtin_catalogue(folder / "catalog.csv"), out, BuildOptions(progress=False, query_views=None))
    return out


@pytest.fixture
def bundle_copy(demo_bundle: Path, tmp_path: Path) -> Path:
    """A private copy of the demo bundle that a test may tamper with."""
    target = tmp_path / "bundle"
    shutil.copytree(demo_bundle, target)
    return target


@pytest.fixture(scope="session")
def demo_queries() -> list[Path]:
    return sorted((DEMO / "images").glob("*_query.jpg"))


@pytest.fixture(scope="session")
def rtx_plans(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """fp32 plans (TensorRT for RTX's default targets) of every shipped model, by model name, plus a Turing
    (7.5) plan of the default visual model under "<name>@7.5": real plans for real manifests."""
    from tests.engine_fixtures import needs_rtx, shipped_models

    needs_rtx()
    from export.engine.build import EngineBuildOptions, build_engine

    out = tmp_path_factory.mktemp("plans")
    plans = {}
    for model in shipped_models():
        report = build_engine(model, out, EngineBuildOptions(flavor="rtx", max_batch=4))
        plans[report.manifest.model_name] = report.plan
    turing = build_engine(DEFAULT_MODEL, out, EngineBuildOptions(flavor="rtx", max_batch=4, compute_capabilities=("7.5",)))
    plans[f"{turing.manifest.model_name}@7.5"] = turing.plan
    return plans
