"""`shadematch quantize`: a visual model in INT8 for ONNX Runtime on the CPU, beside its float32 original.

Static quantisation (activation ranges calibrated on catalogue photos, per-channel weights) in ONNX Runtime's
Q/DQ form (export.engine.precision.CPU_QDQ): on a 2-core AVX-512 VNNI machine MANet runs in 5.3 ms instead of
9.9 at batch 1. The quantised model gets a card of its own that names its float32 parent, so a bundle, a
benchmark or a reader of the card can tell which model and which precision made a descriptor.
"""
from __future__ import annotations

import hashlib
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.describe.modelcard import INT8, ModelCard, card_path_for, quantized_path
from runtime.errors import ShadematchError

from ..bundle.build import load_checked_card
from ..engine.precision import CALIBRATION_METHODS, CPU_QDQ, calibration_images, int8_card, quantize_qdq
from .trunk import write_model_files

#: Calibration photos: 64 store photos of the Grocery Store train split gave the same val accuracy as 128.
DEFAULT_CALIBRATION_COUNT = 64
#: Min-max ranges: on Grocery Store val the closest to float32 of the three (percentile 99.99 / 99.999 and entropy
#: clip the rare large activations that the SR-MAC maxima are made of; benchmarks/grocery/README.md).
DEFAULT_METHOD = "minmax"


@dataclass(frozen=True)
class QuantizeReport:
    model: Path
    card: ModelCard
    calibration_images: int
    seconds: float


def quantize_for_cpu(model: Path, catalog: Path, out_dir: Path, *, count: int = DEFAULT_CALIBRATION_COUNT,
                     method: str = DEFAULT_METHOD) -> QuantizeReport:
    """``NAME_int8.onnx`` with its card and notes in ``out_dir``, calibrated on ``count`` photos of ``catalog``."""
    card = load_checked_card(model)
    if card.precision == INT8:
        raise ShadematchError(f"{model.name} is already INT8 (quantised from {card.raw.get('quantized_from', {}).get('file')})")
    if card.task != "visual":
        raise ShadematchError(f"{model.name}: only visual models are quantised for the CPU (card task {card.task!r})")
    if count < 1:
        raise ShadematchError(f"need at least one calibration photo, got {count}")
    if method not in CALIBRATION_METHODS:
        raise ShadematchError(f"unknown calibration method {method!r} (known: {', '.join(CALIBRATION_METHODS)})")
    images = calibration_images(catalog, count)
    started = time.perf_counter()
    target = quantized_path(Path(out_dir) / model.name)
    with tempfile.TemporaryDirectory(prefix=".quantize-") as tmp:
        staged = quantize_qdq(model, Path(tmp) / target.name, card, images, method, form=CPU_QDQ)
        data = staged.read_bytes()
    seconds = time.perf_counter() - started
    calibration = {"catalogue": Path(catalog).name, "images": len(images), "method": method,
                   "form": "ONNX Runtime Q/DQ: uint8 activations, per-channel 8-bit int8 weights, every operator (needs an INT8 dot-product CPU: VNNI, AMX or ARM dotprod)"}
    raw = int8_card(card, target.stem, hashlib.sha256(data).hexdigest(), calibration)
    raw["rebuild"] = (f"shadematch quantize --onnx {model} --calibration {Path(catalog).name} "
                      f"--count {len(images)} --method {method} --out {out_dir}")
    write_model_files(target.parent, target.stem, data, raw, _notes(raw, len(data)))
    return QuantizeReport(target, ModelCard.load(card_path_for(target)), len(images), seconds)


def _notes(card: dict[str, Any], n_bytes: int) -> str:
    parent = card["quantized_from"]
    calibration = card["calibration"]
    return "\n".join([
        f"# {card['name']}", "",
        f"`{parent['file']}` (sha256 `{parent['sha256']}`) quantised to INT8 for ONNX Runtime on the CPU: "
        f"{calibration['form']}; activation ranges by {calibration['method']} over {calibration['images']} photos of "
        f"`{calibration['catalogue']}`.", "",
        f"- File: `{card['file']}` ({n_bytes / 1e6:.1f} MB), sha256 `{card['sha256']}`; licence {card.get('license', 'see parent')}",
        "- Input and outputs: as the parent's card (`" + parent["name"] + ".md`).",
        f"- Rebuild: `{card['rebuild']}`", "",
        "Accuracy and speed against the parent: benchmarks/int8/README.md and benchmarks/bench/.", "",
    ])
