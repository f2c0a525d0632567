"""The CUDA device a plan would run on, read through pycuda (the card's choice for memory and streams)."""
from __future__ import annotations

from ..errors import BackendError, NoGpuStackError
from .library import TensorRTLibrary
from .plans import DeviceInfo

PYCUDA_INSTALL = "pip install pycuda (part of the `gpu` extra; needs the CUDA toolkit to build)"


def cuda_device(library: TensorRTLibrary, index: int = 0) -> DeviceInfo:
    """Name and compute capability of GPU ``index``; BackendError when there is no pycuda, driver or GPU."""
    try:
        import pycuda.driver as cuda
    except ImportError as exc:
        raise BackendError(f"pycuda is not installed ({exc.name or exc}); {PYCUDA_INSTALL}") from None
    try:
        cuda.init()
        if cuda.Device.count() <= index:
            raise NoGpuStackError(f"no CUDA GPU {index} (found {cuda.Device.count()})")
        device = cuda.Device(index)
        major, minor = device.compute_capability()
        return DeviceInfo(device.name(), f"{major}.{minor}", library.flavor, library.version)
    except BackendError:
        raise
    except Exception as exc:  # pycuda raises its own error types for a missing driver or device
        raise NoGpuStackError(f"no usable CUDA GPU: {exc}") from None
