"""Reduced-precision ONNX: for strongly typed TensorRT builds, and INT8 for ONNX Runtime on the CPU.

TensorRT 10 deprecated and TensorRT 11 / TensorRT for RTX removed the weak-typing precision flags
(BuilderFlag.FP16, BuilderFlag.INT8) and the implicit INT8 calibrators: the precision must be in the ONNX
itself. fp16 uses ONNX Runtime's float16 converter (inputs and outputs stay float32, so the runtime contract
does not change); INT8 is explicit quantisation, Q/DQ pairs from ONNX Runtime's static quantiser calibrated
on catalogue photos: symmetric as TensorRT requires (TENSORRT_QDQ), or in the form ONNX Runtime's CPU kernels
run fastest (CPU_QDQ).
"""
from __future__ import annotations

import copy
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import onnx

from runtime.errors import ImageError, ShadematchError
from runtime.describe.image import load_and_prepare
from runtime.describe.modelcard import INT8, ModelCard

from ..bundle.catalog import read_catalog_csv

#: fixed so that the same catalogue gives the same Q/DQ model
CALIBRATION_SEED = 0


@dataclass(frozen=True)
class QdqForm:
    """Where the Q/DQ pairs go and how they are typed: what a consumer of the quantised model needs."""

    #: "QUInt8" or "QInt8" (onnxruntime.quantization.QuantType names); weights are always per-channel QInt8
    activations: str
    #: operator types quantised (empty: every operator ONNX Runtime can quantise)
    ops: tuple[str, ...] = ()
    extra_options: dict[str, Any] = field(default_factory=dict)
    #: 7-bit weights: x86 CPUs without VNNI (AVX2) sum uint8 x int8 pairs in saturating int16 (VPMADDUBSW), which
    #: 8-bit weights overflow (ONNX Runtime's quantisation guide)
    reduce_range: bool = False


#: TensorRT runs in INT8 the layers with Q/DQ pairs: symmetric per-tensor activations, float biases (it dequantises
#: only 8-bit and narrower types, not int32). Quantising beyond these operators (ONNX Runtime's default) also
#: quantises scalar constants (EAST's geometry scale), which TensorRT refuses outside a weight's DQ.
TENSORRT_QDQ = QdqForm("QInt8", ("Conv", "ConvTranspose", "MatMul", "Gemm"),
                       {"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False})
#: ONNX Runtime's CPU kernels (unsigned activations x signed 8-bit weights) with every operator quantised: Clip, Add,
#: Resize and Concat in INT8 keep the tensors 8-bit between convolutions. Quantising convolutions alone left float
#: tensors between them and cost accuracy (descriptor cosine to fp32 0.81 vs 0.994; benchmarks/grocery/README.md).
#: 8-bit, not 7-bit, weights: the 7-bit range was the one large loss of MANet in INT8 (descriptor cosine to float32
#: 0.955 -> 0.989 on Grocery val; no part kept in float32 did better, benchmarks/int8/README.md). 8-bit weights
#: need a CPU with an INT8 dot-product instruction (runtime.backends.cpu), where builds choose INT8 by default.
CPU_QDQ = QdqForm("QUInt8")
#: activation range calibration: name -> (ONNX Runtime method name, its options). Percentile (99.99 %)
#: ignores the rare outliers that stretch a min-max range: on the demo queries it kept the descriptors
#: closer to fp32 (mean cosine 0.927 vs 0.889 for min-max; benchmarks/tensorrt/README.md)
CALIBRATION_METHODS: dict[str, tuple[str, dict]] = {
    "percentile": ("Percentile", {"CalibPercentile": 99.99}),
    "minmax": ("MinMax", {}),
    "entropy": ("Entropy", {}),
}


def to_fp16(onnx_path: Path, out: Path) -> Path:
    """An fp16 copy of the model with float32 inputs and outputs."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(onnx_path)), keep_io_types=True)
    _save_atomic(model, out)
    return out


def calibration_images(catalog_csv: Path, count: int) -> list[Path]:
    """Up to ``count`` catalogue photos, spread over the catalogue (seeded sample), for INT8 calibration."""
    rows, _problems = read_catalog_csv(catalog_csv)
    if not rows:
        raise ShadematchError(f"{catalog_csv}: no usable catalogue rows for INT8 calibration")
    images = sorted({row.image for row in rows})
    if len(images) > count:
        picked = np.random.default_rng(CALIBRATION_SEED).choice(len(images), size=count, replace=False)
        images = [images[i] for i in sorted(picked)]
    return images


class CatalogReader:
    """ONNX Runtime CalibrationDataReader over prepared photos, one image per batch."""

    def __init__(self, images: Sequence[Path], card: ModelCard) -> None:
        self._batches = self._read(images, card)

    @staticmethod
    def _read(images: Sequence[Path], card: ModelCard) -> Iterator[dict[str, np.ndarray]]:
        side = max(card.input.height, card.input.width)
        for image in images:
            try:
                prepared = load_and_prepare(image, card.input)
            except ImageError:
                continue  # an unreadable catalogue photo is reported by `build`; calibration just skips it
            if card.input.resize == "longer_side_multiple_32":
                prepared = _pad_square(prepared, side)
            yield {card.input.name: prepared[None]}

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)


def _pad_square(image: np.ndarray, side: int) -> np.ndarray:
    """The text detector keeps each photo's aspect, so its inputs differ in shape, but the histogram
    calibrators (percentile, entropy) stack every sample's activations: pad to side x side, bottom and right,
    with 0, which is mid-grey after normalisation."""
    padded = np.zeros((image.shape[0], side, side), dtype=image.dtype)
    padded[:, : image.shape[1], : image.shape[2]] = image
    return padded


def quantize_qdq(onnx_path: Path, out: Path, card: ModelCard, images: Sequence[Path], method: str = "percentile",
                 form: QdqForm = TENSORRT_QDQ, exclude: Sequence[str] = ()) -> Path:
    """INT8 Q/DQ model calibrated on ``images`` (``method``: CALIBRATION_METHODS), per-channel weights, in ``form``
    (TENSORRT_QDQ: the explicit-quantisation form TensorRT builds; CPU_QDQ: ONNX Runtime on the CPU); the nodes
    named in ``exclude`` stay in float32."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if not images:
        raise ShadematchError("INT8 calibration needs at least one catalogue photo")
    if method not in CALIBRATION_METHODS:
        raise ShadematchError(f"unknown calibration method {method!r} (known: {', '.join(CALIBRATION_METHODS)})")
    method_name, method_options = CALIBRATION_METHODS[method]
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".qdq-", dir=out.parent) as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(onnx_path), str(prepared), skip_symbolic_shape=True)
        staged = Path(tmp) / out.name
        quantize_static(
            str(prepared), str(staged), CatalogReader(images, card),
            quant_format=QuantFormat.QDQ, per_channel=True, reduce_range=form.reduce_range,
            op_types_to_quantize=list(form.ops) or None, nodes_to_exclude=list(exclude) or None,
            activation_type=QuantType[form.activations], weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod[method_name],
            extra_options={**form.extra_options, **method_options},
        )
        os.replace(staged, out)
    return out


def int8_card(parent: ModelCard, name: str, sha256: str, calibration: dict[str, Any]) -> dict[str, Any]:
    """The parent's card for a quantised file ``name``.onnx (this CPU form, or TensorRT's Q/DQ form of `engine build`):
    same input and outputs, its own name, file and checksum, the parent it came from and how it was calibrated.
    The parent's accuracy figures and parity checks do not carry over."""
    raw = copy.deepcopy(parent.raw)
    raw.update(name=name, file=f"{name}.onnx", sha256=sha256, precision=INT8)
    raw.pop("metrics", None)
    raw.pop("parity", None)
    raw["quantized_from"] = {"name": parent.name, "file": parent.file, "sha256": parent.sha256}
    raw["calibration"] = calibration
    return raw


def _save_atomic(model: onnx.ModelProto, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    staged = out.with_name(f".{out.name}.tmp")
    onnx.save(model, str(staged))
    os.replace(staged, out)
