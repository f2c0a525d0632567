"""ONNX Runtime backend: the embedded default, CPU unless told otherwise."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import onnxruntime as ort

from ..errors import BackendError
from .base import Backend, TensorSpec

# ONNX Runtime reports element types as strings such as "tensor(float)".
_ORT_DTYPES = {
    "tensor(float)": np.dtype(np.float32),
    "tensor(float16)": np.dtype(np.float16),
    "tensor(double)": np.dtype(np.float64),
    "tensor(int64)": np.dtype(np.int64),
    "tensor(int32)": np.dtype(np.int32),
    "tensor(uint8)": np.dtype(np.uint8),
}


class OnnxRuntimeBackend(Backend):
    """An ``onnxruntime.InferenceSession``; ``run`` is thread-safe (ONNX Runtime sessions are)."""

    kind = "onnxruntime"

    def __init__(
        self,
        model_path: str | Path,
        *,
        threads: int | None = None,
        providers: Sequence[str] = ("CPUExecutionProvider",),
        spin: bool = True,
        simulate_quantization: bool = False,
    ) -> None:
        """``spin``: let idle worker threads spin between runs (ONNX Runtime's default), which saves ~1.5 ms a
        query when this is the only model running. Where several sessions take turns on the same cores (the
        visual model and the label reader's two), threads left spinning after one session's run steal the cores
        from the next (81 ms instead of 115 ms for a query that reads the label, on 2 cores, once spinning was
        off). ``spin=False`` keeps the spinning inside a run, between its operators, and stops it the moment the
        run returns (``session.force_spinning_stop``): waking the threads for each of the reader's ~200 operators
        cost more than the spinning saved; measured in a query-like loop (the visual model's three views, then
        the read; 1280 px photos, 2 cores, 3 rounds): the read 29.5-33.8 -> 27.4-28.0 ms, the visual model
        23.4-26.3 -> 21.6-21.9 ms (benchmarks/reading/README.md).

        ``simulate_quantization``: run a Q/DQ model's pairs as written (dequantise, float operator, quantise), the
        arithmetic of TensorRT's INT8 layers, instead of fusing them into ONNX Runtime's integer kernels: on an x86
        CPU without VNNI those sum uint8 x int8 pairs in saturating int16, so TensorRT's 8-bit-weight form loses
        accuracy there that it does not lose on a GPU (demo query descriptors, cosine to fp32: 0.65-0.79 fused
        vs 0.91-0.94 simulated; ImageNet trunk, AMD EPYC with AVX2). Costs speed: for measuring a quantisation."""
        super().__init__(model_path)
        options = ort.SessionOptions()
        # the QDQ fusions are level-2 (extended) transformers; basic keeps constant folding and nothing fused
        options.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_BASIC if simulate_quantization
                                            else ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
        if not spin:
            options.add_session_config_entry("session.force_spinning_stop", "1")
        if threads:
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
        try:
            self._session = ort.InferenceSession(str(self.model_path), options, providers=list(providers))
        except Exception as exc:  # ORT raises its own exception types for files, graphs and providers alike
            raise BackendError(f"ONNX Runtime cannot load {self.model_path}: {exc}") from None
        self._inputs = {
            arg.name: TensorSpec(arg.name, _dtype(arg.type), tuple(d if isinstance(d, int) else None for d in arg.shape))
            for arg in self._session.get_inputs()
        }
        self._output_names = [arg.name for arg in self._session.get_outputs()]

    @property
    def inputs(self) -> dict[str, TensorSpec]:
        return self._inputs

    @property
    def output_names(self) -> list[str]:
        return list(self._output_names)

    @property
    def providers(self) -> list[str]:
        return list(self._session.get_providers())

    def _run_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            values = self._session.run(self._output_names, feeds)
        except Exception as exc:
            raise BackendError(f"ONNX Runtime failed on {self.model_path.name}: {exc}") from None
        return dict(zip(self._output_names, values))

    def _close_impl(self) -> None:
        del self._session


def _dtype(ort_type: str) -> np.dtype:
    try:
        return _ORT_DTYPES[ort_type]
    except KeyError:
        raise BackendError(f"unsupported ONNX tensor type {ort_type}") from None
