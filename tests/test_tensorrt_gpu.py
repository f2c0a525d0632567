"""The TensorRT backend on a real GPU: same descriptors as ONNX Runtime, batches split at the plan's max,
one execution context per thread. Skips on a machine without pycuda, a CUDA GPU or TensorRT."""
from __future__ import annotations

import importlib.util
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from runtime.errors import BackendError
from runtime.describe.modelcard import ModelCard, card_path_for
from tests.conftest import MODEL


def _gpu_library():
    """The TensorRT flavour that can build for this GPU, and the GPU; skip with the reason otherwise."""
    if importlib.util.find_spec("pycuda") is None:
        pytest.skip("GPU test: pycuda is not installed (no CUDA GPU on this machine)")
    from runtime.engines.device import cuda_device
    from runtime.engines.library import import_tensorrt

    reasons = []
    for flavor in ("tensorrt", "rtx"):
        try:
            library = import_tensorrt(flavor)
            device = cuda_device(library)
        except BackendError as exc:
            reasons.append(str(exc))
            continue
        if library.targets_compute_capabilities and device.compute_capability not in library.known_compute_capabilities():
            reasons.append(f"{library.name} cannot target {device.name} ({device.compute_capability})")
            continue
        return library, device
    pytest.skip("GPU test: " + "; ".join(reasons))


@pytest.fixture(scope="module")
def gpu_plan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    library, device = _gpu_library()
    from export.engine.build import EngineBuildOptions, build_engine

    targets = (device.compute_capability,) if library.targets_compute_capabilities else ()
    out = tmp_path_factory.mktemp("gpu-plans")
    return build_engine(MODEL, out, EngineBuildOptions(flavor=library.flavor, max_batch=4, compute_capabilities=targets)).plan


def test_tensorrt_matches_onnxruntime(gpu_plan: Path, demo_queries: list[Path]) -> None:
    from runtime.backends import open_backend
    from runtime.describe.embedder import Embedder

    card = ModelCard.load(card_path_for(MODEL))
    with open_backend(gpu_plan, "tensorrt") as trt, open_backend(MODEL, "onnxruntime") as ort:
        assert trt.kind == "tensorrt" and trt.inputs["image"].shape == (None, 3, 320, 320)
        a = Embedder(trt, card, 3).embed(demo_queries, batch_size=12)  # 12 > max batch 4: split in three
        b = Embedder(ort, card, 3).embed(demo_queries)
    assert np.all((a * b).sum(axis=1) > 0.999)


def test_one_context_per_thread_gives_the_same_answers(gpu_plan: Path) -> None:
    from runtime.backends import open_backend

    batches = [np.random.default_rng(i).uniform(-1, 1, (2, 3, 320, 320)).astype(np.float32) for i in range(8)]
    with open_backend(gpu_plan, "tensorrt") as trt:
        alone = [trt.run({"image": b})["X"] for b in batches]
        with ThreadPoolExecutor(4) as pool:
            together = list(pool.map(lambda b: trt.run({"image": b})["X"], batches))
    for x, y in zip(alone, together):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-5)


def test_auto_picks_tensorrt_when_a_plan_fits(gpu_plan: Path, tmp_path: Path) -> None:
    import shutil

    from runtime.backends import open_backend
    from runtime.engines.plans import sidecar_for

    shutil.copy(MODEL, tmp_path)
    shutil.copy(card_path_for(MODEL), tmp_path)
    (tmp_path / "build").mkdir()
    shutil.copy(gpu_plan, tmp_path / "build")
    shutil.copy(sidecar_for(gpu_plan), tmp_path / "build")
    with open_backend(tmp_path / MODEL.name, "auto") as backend:
        assert backend.kind == "tensorrt"


def test_catalogue_extraction_in_large_batches_on_the_gpu(gpu_plan: Path, tmp_path: Path) -> None:
    """The GPU half of export.bundle.shards: one worker, batches larger than the plan's max (split inside the
    backend), descriptors equal to ONNX Runtime's, in catalogue order."""
    import shutil

    pytest.importorskip("sklearn")
    from export.bundle.build import load_checked_card
    from export.bundle.catalog import read_catalog_csv
    from export.bundle.shards import ShardOptions, extract_sharded
    from runtime.engines.plans import sidecar_for
    from runtime.describe.pooling import DEFAULT_LEVELS

    from .conftest import DEMO

    models = tmp_path / "models"
    (models / "build").mkdir(parents=True)
    for source, target in ((MODEL, models), (card_path_for(MODEL), models), (gpu_plan, models / "build"),
                           (sidecar_for(gpu_plan), models / "build")):
        shutil.copy(source, target)
    rows, _ = read_catalog_csv(DEMO / "catalog.csv")
    card = load_checked_card(MODEL)
    on_gpu, kept, problems, _ = extract_sharded(rows, models / MODEL.name, card, DEFAULT_LEVELS, tmp_path / "gpu",
                                             ShardOptions(workers=1, batch_size=16, backend="tensorrt"))
    on_cpu, _, _, _ = extract_sharded(rows, MODEL, card, DEFAULT_LEVELS, tmp_path / "cpu",
                                   ShardOptions(workers=1, backend="onnxruntime"))
    assert len(kept) == len(rows) and not problems
    assert np.all((on_gpu * on_cpu).sum(axis=1) > 0.999)
