"""The shipped PP-OCRv4 detector and recogniser, folded (export/onnx/fold.py) from the files rapidocr-onnxruntime
ships: each output checked against the original's on store-like inputs, the cards' sha256 and provenance updated.

Usage: python benchmarks/reading/fold_ocr.py   (writes engines/ppocr_det_v4.onnx, engines/ppocr_rec_v4.onnx)
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import rapidocr_onnxruntime

from export.onnx.fold import fold_file
from runtime.describe.modelcard import card_path_for

ENGINES = Path(__file__).resolve().parents[2] / "engines"
RAPIDOCR = Path(rapidocr_onnxruntime.__file__).parent / "models"
#: shipped name -> rapidocr's file, and an input shape to compare the outputs on
MODELS = {
    "ppocr_det_v4.onnx": ("ch_PP-OCRv4_det_infer.onnx", (1, 3, 384, 288)),
    "ppocr_rec_v4.onnx": ("ch_PP-OCRv4_rec_infer.onnx", (4, 3, 48, 320)),
}
#: Largest output difference accepted: float32 rounding of the folded weights.
TOLERANCE = 1e-4


def largest_difference(original: Path, folded: Path, shape: tuple[int, ...]) -> float:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    sessions = [ort.InferenceSession(str(p), options, providers=["CPUExecutionProvider"]) for p in (original, folded)]
    x = np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)
    name = sessions[0].get_inputs()[0].name
    a, b = (s.run(None, {name: x})[0] for s in sessions)
    return float(np.abs(a - b).max())


def main() -> None:
    for shipped, (original_name, shape) in MODELS.items():
        original, target = RAPIDOCR / original_name, ENGINES / shipped
        report = fold_file(original, target)
        difference = largest_difference(original, target, shape)
        if difference > TOLERANCE:
            raise SystemExit(f"{shipped}: folded output differs by {difference:.2e} (> {TOLERANCE})")
        card_path = card_path_for(target)
        card = json.loads(card_path.read_text(encoding="utf-8"))
        card["sha256"] = hashlib.sha256(target.read_bytes()).hexdigest()
        card["folded_from"] = {"file": f"rapidocr_onnxruntime/models/{original_name}",
                               "sha256": hashlib.sha256(original.read_bytes()).hexdigest(),
                               "by": "export/onnx/fold.py", "largest_output_difference": difference}
        card_path.write_text(json.dumps(card, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"{shipped}: {report}, largest output difference {difference:.1e}, sha256 {card['sha256']}")


if __name__ == "__main__":
    main()
