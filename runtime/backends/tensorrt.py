"""TensorRT backend (full TensorRT or TensorRT for RTX): a plan run through pycuda memory and streams.

Per plan: one deserialised engine. Per calling thread: one execution context with its own CUDA stream,
page-locked host buffers and device buffers sized for the profile's largest shapes (contexts and streams
are not shared between threads, so ``run`` is thread-safe without a lock around the GPU work). Each run is
``set_input_shape`` -> copy in -> ``set_tensor_address`` for every tensor -> ``execute_async_v3`` -> copy
out -> synchronise. Batches beyond the plan's max batch are split.

Which plan: runtime.engines.plans.choose_plan (manifests vs this GPU and library; pure and tested on CPU).
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..engines.device import PYCUDA_INSTALL, cuda_device
from ..engines.library import import_tensorrt
from ..engines.plans import choose_plan
from ..errors import BackendError
from .base import Backend, TensorSpec


def _pycuda() -> Any:
    try:
        import pycuda.driver as cuda
    except ImportError as exc:
        raise BackendError(f"pycuda is not installed ({exc.name or exc}); {PYCUDA_INSTALL}") from None
    return cuda


@dataclass
class _ThreadState:
    """What one thread needs to run the engine: its execution context, stream and buffers."""

    context: Any
    stream: Any
    host: dict[str, np.ndarray]  # flat page-locked buffers at the largest shape
    device: dict[str, Any]  # pycuda DeviceAllocation per tensor


class TensorRTBackend(Backend):
    """A TensorRT plan on one GPU. ``model_path`` is a .plan (with its NAME.plan.json) or an .onnx whose
    plans are found beside it (`build/`) or in its bundle (`engines/`); ``threads`` is accepted for the
    common interface and unused (the GPU does the work)."""

    kind = "tensorrt"

    def __init__(self, model_path: str | Path, *, threads: int | None = None, device_index: int = 0,
                 spin: bool = True) -> None:
        # ``spin`` is ONNX Runtime's thread option (runtime.backends.onnxruntime); a plan runs on the GPU's stream.
        super().__init__(model_path)
        self.plan_path, self.manifest, self.device = choose_plan(
            self.model_path, lambda flavor: cuda_device(import_tensorrt(flavor), device_index)
        )
        self._cuda = cuda = _pycuda()
        self._library = import_tensorrt(self.manifest.flavor)
        trt = self._library.module
        self._gpu = cuda.Device(device_index).retain_primary_context()
        self._logger = trt.Logger(trt.Logger.WARNING)
        with self._current():
            self._runtime = trt.Runtime(self._logger)
            self._engine = self._runtime.deserialize_cuda_engine(self.plan_path.read_bytes())
        if self._engine is None:
            self._gpu.detach()
            raise BackendError(f"{self._library.name} could not deserialise {self.plan_path.name} (see its log above)")
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        is_input = {name: self._engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT for name in names}
        self._inputs = {
            name: TensorSpec(name, self._dtype(name), tuple(None if d < 0 else int(d) for d in self._engine.get_tensor_shape(name)))
            for name in names if is_input[name]
        }
        self._output_names = [name for name in names if not is_input[name]]
        # (min, opt, max) of profile 0, the one profile `shadematch engine build` writes
        self._profile = {name: [tuple(s) for s in self._engine.get_tensor_profile_shape(name, 0)] for name in self._inputs}
        self._max_batch = min(shape[2][0] for shape in self._profile.values())
        self._local = threading.local()
        self._states: list[_ThreadState] = []
        self._states_lock = threading.Lock()

    @property
    def inputs(self) -> dict[str, TensorSpec]:
        return self._inputs

    @property
    def output_names(self) -> list[str]:
        return list(self._output_names)

    def _dtype(self, name: str) -> np.dtype:
        return np.dtype(self._library.module.nptype(self._engine.get_tensor_dtype(name)))

    @contextmanager
    def _current(self) -> Iterator[None]:
        """Make this backend's CUDA context current on the calling thread for the block."""
        self._gpu.push()
        try:
            yield
        finally:
            self._cuda.Context.pop()

    def _state(self) -> _ThreadState:
        state = getattr(self._local, "state", None)
        if state is None:
            state = self._new_state()
            self._local.state = state
            with self._states_lock:
                self._states.append(state)
        return state

    def _new_state(self) -> _ThreadState:
        context = self._engine.create_execution_context()
        if context is None:
            raise BackendError(f"{self.plan_path.name}: TensorRT could not create an execution context (GPU memory?)")
        for name, (_, _, largest) in self._profile.items():
            context.set_input_shape(name, largest)
        shapes = {name: tuple(context.get_tensor_shape(name)) for name in [*self._inputs, *self._output_names]}
        host = {name: self._cuda.pagelocked_empty(int(np.prod(shape)), self._dtype(name)) for name, shape in shapes.items()}
        device = {name: self._cuda.mem_alloc(buffer.nbytes) for name, buffer in host.items()}
        for name, allocation in device.items():
            context.set_tensor_address(name, int(allocation))
        return _ThreadState(context, self._cuda.Stream(), host, device)

    def _run_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        batch = next(iter(feeds.values())).shape[0]
        if batch <= self._max_batch:
            return self._run_chunk(feeds)
        parts = [
            self._run_chunk({name: array[start : start + self._max_batch] for name, array in feeds.items()})
            for start in range(0, batch, self._max_batch)
        ]
        return {name: np.concatenate([part[name] for part in parts]) for name in self._output_names}

    def _run_chunk(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        for name, array in feeds.items():
            low, _, high = self._profile[name]
            if any(s < lo or s > hi for s, lo, hi in zip(array.shape, low, high)):
                raise BackendError(
                    f"{self.plan_path.name}: input {name!r} shape {array.shape} is outside the plan's profile "
                    f"{low}..{high}; rebuild the engine with a wider profile"
                )
        cuda = self._cuda
        with self._current():
            state = self._state()
            for name, array in feeds.items():
                state.context.set_input_shape(name, array.shape)
                staged = state.host[name][: array.size].reshape(array.shape)
                np.copyto(staged, array)
                cuda.memcpy_htod_async(state.device[name], staged, state.stream)
            if not state.context.execute_async_v3(state.stream.handle):
                raise BackendError(f"{self.plan_path.name}: TensorRT execution failed (see its log above)")
            shapes = {name: tuple(state.context.get_tensor_shape(name)) for name in self._output_names}
            for name, shape in shapes.items():
                cuda.memcpy_dtoh_async(state.host[name][: int(np.prod(shape))], state.device[name], state.stream)
            state.stream.synchronize()
            return {name: state.host[name][: int(np.prod(shape))].reshape(shape).copy() for name, shape in shapes.items()}

    def _close_impl(self) -> None:
        with self._current():
            for state in self._states:
                for allocation in state.device.values():
                    allocation.free()
                del state.context
            self._states.clear()
            del self._engine, self._runtime
        self._gpu.detach()
