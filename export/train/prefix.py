"""The frozen prefix of MANet training (backbone blocks before ``train_from_block`` and the frozen EAST) on ONNX Runtime.

Why: with fresh views every step, the frozen prefix runs on every batch, and PyTorch's CPU kernels for
EfficientNet's depthwise convolutions are slow: on 2 cores, blocks 0-10 of a 32 x 256 x 256 batch took 1.9 s in
PyTorch and 0.55 s in ONNX Runtime, over half of a training step. The prefix has no trainable weight and its
BatchNorms stay in eval mode (`MANet.train`), so it is a fixed function: exported once at the start of a run,
checked against PyTorch on a batch, then run by ONNX Runtime.
"""
from __future__ import annotations

import io
import warnings

import numpy as np
import onnxruntime as ort
import torch

from ..models.manet import MANet

OUTPUTS = ("c8", "c16", "x", "t_prob")
#: Largest difference to PyTorch accepted, relative to each output's scale (float32 rounding is ~1e-6).
PARITY = 1e-3


class _Prefix(torch.nn.Module):
    def __init__(self, model: MANet, split: int) -> None:
        super().__init__()
        self.model, self.split = model, split

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.model.frozen_prefix(image, self.split)


class OnnxPrefix:
    """``model.frozen_prefix(image, split)`` on ONNX Runtime (CPU); call it as that method is called."""

    def __init__(self, model: MANet, split: int, size: int, threads: int = 0) -> None:
        prefix = _Prefix(model, split).eval()
        sample = torch.zeros(2, 3, size, size)
        buffer = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TracerWarnings of the static 'same' padding: shapes are fixed per run
            torch.onnx.export(prefix, sample, buffer, input_names=["image"], output_names=list(OUTPUTS),
                              dynamic_axes={"image": {0: "n"}}, opset_version=17, dynamo=False)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])
        self._check(prefix, size)

    def _check(self, prefix: torch.nn.Module, size: int) -> None:
        image = torch.rand(3, 3, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1
        with torch.no_grad():
            expected = prefix(image)
        for name, want, got in zip(OUTPUTS, expected, self(image)):
            scale = max(float(want.abs().max()), 1.0)
            if float((got - want).abs().max()) > PARITY * scale:
                raise RuntimeError(f"the frozen prefix on ONNX Runtime disagrees with PyTorch on {name}")

    def __call__(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outputs = self.session.run(list(OUTPUTS), {"image": np.ascontiguousarray(image.numpy(), dtype=np.float32)})
        return tuple(torch.from_numpy(o) for o in outputs)
