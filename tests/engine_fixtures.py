"""Real TensorRT for RTX plans of every shipped model, built once per session (ahead of time, no GPU)."""
from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENGINES = ROOT / "engines"
RTX_MISSING = "TensorRT for RTX (tensorrt_rtx) is not installed: pip install 'shadematch[rtx]'"


def shipped_models() -> list[Path]:
    """Every shipped ONNX model, found by its card (a model added to engines/ later is covered too)."""
    return sorted(ENGINES / card.name.replace(".card.json", ".onnx") for card in ENGINES.glob("*.card.json"))


def needs_rtx() -> None:
    pytest.importorskip("tensorrt_rtx", reason=RTX_MISSING)
    pytest.importorskip("sklearn", reason="the engine build is part of the offline stage: pip install 'shadematch[export]'")
