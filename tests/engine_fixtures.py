"""Real TensorRT for RTX plans of every shipped model, built once per session (ahead of time, no GPU)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENGINES = ROOT / "engines"
RTX_MISSING = "TensorRT for RTX (tensorrt_rtx) is not installed: pip install 'shadematch[rtx]'"


#: Tasks whose shipped models get TensorRT plans: the visual model and MANet's EAST text branch. The label reader's
#: PP-OCR models (text_detection, text_recognition) run on ONNX Runtime only (runtime.reading.reader).
PLANNED_TASKS = ("visual", "text")


def shipped_models() -> list[Path]:
    """Every shipped ONNX model that plans are built for, found by its card (a model added to engines/ later is
    covered too); INT8 models for the CPU are not (their float32 parents are)."""
    cards = [json.loads(card.read_text(encoding="utf-8")) for card in sorted(ENGINES.glob("*.card.json"))]
    return [ENGINES / card["file"] for card in cards
            if card["task"] in PLANNED_TASKS and card.get("precision", "fp32") == "fp32"]


def needs_rtx() -> None:
    pytest.importorskip("tensorrt_rtx", reason=RTX_MISSING)
    pytest.importorskip("sklearn", reason="the engine build is part of the offline stage: pip install 'shadematch[export]'")
