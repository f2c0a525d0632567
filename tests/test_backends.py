"""The backend interface, checked on the real shipped model with ONNX Runtime."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from runtime.backends import backend_names, open_backend
from runtime.errors import BackendError

from .conftest import MODEL


@pytest.fixture(scope="module")
def backend():
    with open_backend(MODEL, "auto", threads=2) as opened:
        yield opened


def test_auto_picks_onnxruntime_on_cpu(backend) -> None:
    assert backend.kind == "onnxruntime"
    assert "auto" in backend_names() and "onnxruntime" in backend_names()


def test_contract_of_the_visual_model(backend) -> None:
    spec = backend.inputs["image"]
    assert spec.dtype == np.float32 and spec.shape[0] is None and spec.shape[1:] == (3, 320, 320)
    outputs = backend.run({"image": np.zeros((2, 3, 320, 320), np.float32)})
    assert outputs["X"].shape == (2, 1280, 10, 10)
    assert outputs["S"].shape == (2, 1, 10, 10)
    assert np.all((outputs["S"] >= 0) & (outputs["S"] <= 1))


@pytest.mark.parametrize(
    ("feeds", "message"),
    [
        ({}, "missing: \\['image'\\]"),
        ({"image": np.zeros((1, 3, 320, 320), np.float32), "extra": np.zeros(1, np.float32)}, "unknown: \\['extra'\\]"),
        ({"image": np.zeros((1, 3, 320, 320), np.float64)}, "must be float32, got float64"),
        ({"image": np.zeros((1, 3, 224, 224), np.float32)}, "has shape \\(1, 3, 224, 224\\)"),
        ({"image": np.zeros((3, 320, 320), np.float32)}, "has shape"),
    ],
)
def test_wrong_feeds_are_refused_with_the_reason(backend, feeds: dict, message: str) -> None:
    with pytest.raises(BackendError, match=message):
        backend.run(feeds)


def test_unknown_backend_and_unloadable_model(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="unknown backend 'cuda-magic'"):
        open_backend(MODEL, "cuda-magic")
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    with pytest.raises(BackendError, match="cannot load"):
        open_backend(broken, "onnxruntime")
    with pytest.raises(BackendError, match="no backend could load"):
        open_backend(broken, "auto")
