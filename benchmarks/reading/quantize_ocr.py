"""The label reader's PP-OCRv4 detector and recogniser in INT8 (ONNX Runtime static Q/DQ, per-channel int8 weights,
uint8 activations, min-max ranges), calibrated on the product regions and text lines of store photos of the
classes the unseen-products protocol lets the model see (benchmarks/new_products/train_catalog.csv), so the
figures hold for seen and unseen products alike. After quantising, an exact rewrite lets ONNX Runtime's integer
kernels run the hard sigmoids, which would otherwise run in float32 between Dequantize/Quantize pairs
(export/onnx/integer_hard_sigmoid.py). Writes NAME_int8.onnx with a card beside each. Run it on the
folded files (fold_ocr.py): quantised from the unfolded graph the detector found fewer lines
(benchmarks/reading/README.md).

Usage: python benchmarks/reading/quantize_ocr.py OUT_DIR [PHOTOS]
"""
from __future__ import annotations

import csv
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import version_converter
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

from export.onnx.conv_transpose import conv_transposes_as_depth_to_space
from export.onnx.integer_hard_sigmoid import rewrite_file
from runtime.describe.image import prepare
from runtime.describe.modelcard import card_path_for
from runtime.reading.photos import decode_photos
from runtime.reading.reader import DEFAULT_DETECTOR, DEFAULT_RECOGNISER, LabelReader

ROOT = Path(__file__).resolve().parents[2]
TRAIN = ROOT / "benchmarks" / "new_products" / "train_catalog.csv"


class Inputs(CalibrationDataReader):
    def __init__(self, name: str, arrays: list[np.ndarray]) -> None:
        self._items = iter([{name: array} for array in arrays])

    def get_next(self):
        return next(self._items, None)


def calibration_inputs(count: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Detector inputs of ``count`` store photos' whole frames, and recogniser inputs of their lines."""
    # the Packages group's photos: the ones with print on them (fruit and vegetables carry a sticker at most)
    rows = [row for row in csv.DictReader(open(TRAIN, encoding="utf-8"))
            if "/train/" in row["image"] and "/Packages/" in row["image"]]
    step = max(1, len(rows) // count)
    photos = decode_photos([TRAIN.parent / row["image"] for row in rows[::step][:count]])
    det, rec = [], []
    with LabelReader.open(max_lines=16) as reader:
        for photo in photos:
            det.append(prepare(photo, reader.detector.input)[None])
            for box, _ in reader.lines(photo):
                crop = photo.crop(tuple(int(round(v)) for v in box))
                rec.append(prepare(crop, reader.recogniser.card.input)[None])
    return det, rec


def quantize(model: Path, out_dir: Path, arrays: list[np.ndarray]) -> Path:
    card = json.loads(card_path_for(model).read_text())
    target = out_dir / f"{model.stem}_int8.onnx"
    prepared = out_dir / f"{model.stem}_prepared.onnx"
    # PP-OCR's files are opset 11, whose DequantizeLinear has no axis: per-channel weights need opset 13 or later
    converted = out_dir / f"{model.stem}_opset17.onnx"
    graph = version_converter.convert_version(onnx.load(str(model)), 17)
    card["conv_transposes_as_depth_to_space"] = conv_transposes_as_depth_to_space(graph)
    onnx.save(graph, str(converted))
    quant_pre_process(str(converted), str(prepared), skip_symbolic_shape=True)
    converted.unlink()
    quantize_static(str(prepared), str(target), Inputs(card["input"]["name"], arrays), quant_format=QuantFormat.QDQ,
                    per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    calibrate_method=CalibrationMethod.MinMax)
    prepared.unlink()
    card["integer_hard_sigmoids"] = rewrite_file(target, target)
    card.update(name=target.stem, file=target.name, sha256=hashlib.sha256(target.read_bytes()).hexdigest(),
                precision="int8", quantized_from={"file": model.name, "sha256": card["sha256"]},
                calibration={"photos": "store photos of the seen classes (train_catalog.csv)", "inputs": len(arrays),
                             "method": "minmax"})
    card_path_for(target).write_text(json.dumps(card, indent=1) + "\n")
    return target


def main(out_dir: Path, count: int) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    det, rec = calibration_inputs(count)
    print(f"calibration: {len(det)} frames, {len(rec)} lines")
    for model, arrays in ((DEFAULT_DETECTOR, det), (DEFAULT_RECOGNISER, rec)):
        print("wrote", quantize(model, out_dir, arrays))


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 48)
