"""Shipped ONNX weights back into the PyTorch modules they were exported from.

Why: a shipped model (`engines/*.onnx`) is the only copy of its trained weights that travels with the project
(training checkpoints stay on the machine that made them), so training deeper from it, or using the frozen EAST
inside MANet, starts from the ONNX file. The exporter folded every BatchNorm into the convolution before it
(initializers `<conv>.weight` and `<conv>.weight_bias`); loading therefore writes the folded weight into the
convolution and turns its BatchNorm into the identity plus that bias (running mean 0, variance 1 - eps, scale 1),
which computes exactly what the ONNX graph computes as long as the BatchNorm runs in eval mode (frozen
statistics: `MANet` keeps its backbone's there, and EAST is frozen).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn


def onnx_weights(path: Path) -> dict[str, np.ndarray]:
    """Every named initializer of an ONNX file."""
    return {init.name: numpy_helper.to_array(init) for init in onnx.load(str(path)).graph.initializer}


def conv_bn_pairs(module: nn.Module, example: torch.Tensor) -> dict[str, str]:
    """conv name -> name of the BatchNorm that takes its output, found by running ``example`` through ``module``."""
    names = {id(m): n for n, m in module.named_modules()}
    produced: dict[int, str] = {}
    pairs: dict[str, str] = {}

    def after_conv(conv: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        produced[id(output)] = names[id(conv)]

    def before_bn(bn: nn.Module, inputs: tuple) -> None:
        conv = produced.get(id(inputs[0]))
        if conv is not None:
            pairs[conv] = names[id(bn)]

    hooks = [m.register_forward_hook(after_conv) for m in module.modules() if isinstance(m, nn.Conv2d)]
    hooks += [m.register_forward_pre_hook(before_bn) for m in module.modules() if isinstance(m, nn.BatchNorm2d)]
    try:
        with torch.no_grad():
            module.eval()(example)
    finally:
        for hook in hooks:
            hook.remove()
    return pairs


def load_folded(module: nn.Module, weights: dict[str, np.ndarray], prefix: str, example: torch.Tensor,
                skip: tuple[str, ...] = ()) -> None:
    """Load ``weights`` (ONNX initializers named ``prefix + parameter name``) into ``module``, BatchNorm folded.

    ``skip`` names submodules left as they are: a training head the ONNX file never had, or MANet's EAST, whose weights the exporter shared with the backbone
    where they were equal (the ImageNet stem) or dropped where unused (the geometry heads), so it is loaded
    from the shipped EAST file instead. Raises KeyError naming the first parameter the ONNX file does not
    hold, so a model of another shape fails loudly instead of training from half-random weights."""
    pairs = {conv: bn for conv, bn in conv_bn_pairs(module, example).items()
             if not _skipped(conv, skip)}
    state = module.state_dict()
    loaded: dict[str, torch.Tensor] = {}
    for conv, bn in pairs.items():
        loaded[f"{conv}.weight"] = torch.from_numpy(weights[f"{prefix}{conv}.weight"].copy())
        bias = torch.from_numpy(weights[f"{prefix}{conv}.weight_bias"].copy())
        eps = dict(module.named_modules())[bn].eps
        loaded[f"{bn}.weight"] = torch.ones_like(bias)
        loaded[f"{bn}.bias"] = bias
        loaded[f"{bn}.running_mean"] = torch.zeros_like(bias)
        loaded[f"{bn}.running_var"] = torch.full_like(bias, 1.0 - eps)
    for name in state:
        if name in loaded or name.endswith("num_batches_tracked") or _skipped(name, skip):
            continue
        loaded[name] = torch.from_numpy(np.array(weights[f"{prefix}{name}"]))
    module.load_state_dict({**state, **loaded})


def _skipped(name: str, skip: tuple[str, ...]) -> bool:
    return any(name == part or name.startswith(f"{part}.") for part in skip)
