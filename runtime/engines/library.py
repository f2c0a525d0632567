"""One import shim for the two TensorRT Python APIs: full TensorRT (`tensorrt`, datacenter GPUs and Jetson)
and TensorRT for RTX (`tensorrt_rtx`, RTX GPUs; builds on a CPU-only machine ahead of time).

Their APIs are nearly identical; the few differences are answered by what the module offers (``hasattr``),
never by comparing version strings, so a future release that adds or drops a feature is handled by itself.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

from ..errors import BackendError, NoGpuStackError

#: flavour -> (Python module, the pip extra or package that provides it)
FLAVORS: dict[str, tuple[str, str]] = {
    "rtx": ("tensorrt_rtx", "pip install 'shadematch[rtx]' (tensorrt-rtx-cu12)"),
    "tensorrt": ("tensorrt", "pip install 'shadematch[gpu]' (tensorrt), or JetPack's python3-libnvinfer on a Jetson"),
}


@dataclass(frozen=True)
class TensorRTLibrary:
    """An imported TensorRT module and what it can do."""

    module: ModuleType
    flavor: str

    @property
    def name(self) -> str:
        return self.module.__name__

    @property
    def version(self) -> str:
        return str(self.module.__version__)

    @property
    def strongly_typed(self) -> bool:
        """Strongly typed networks (TensorRT >= 9, RTX): precision comes from the ONNX types. Without them
        (TensorRT 8) the weak-typing flags BuilderFlag.FP16 / INT8 are the only way, and they are used then;
        TensorRT 10 deprecated those flags, TensorRT 11 and TensorRT for RTX removed them."""
        return hasattr(self.module.NetworkDefinitionCreationFlag, "STRONGLY_TYPED")

    @property
    def targets_compute_capabilities(self) -> bool:
        """Ahead-of-time builds for a list of compute capabilities without a GPU (TensorRT for RTX)."""
        return hasattr(self.module, "ComputeCapability") and hasattr(self.module.IBuilderConfig, "set_compute_capability")

    @property
    def compiles_at_runtime(self) -> bool:
        """Kernels are compiled just in time on the device and kept in a runtime cache (TensorRT for RTX),
        which makes the build-time timing cache a no-op there."""
        return hasattr(self.module, "IRuntimeCache") and self.targets_compute_capabilities

    def compute_capability_enum(self, capability: str):  # noqa: ANN201 (a member of the module's enum)
        """``"8.6"`` -> ``ComputeCapability.SM86``; a clear error for one the library does not know."""
        major, _, minor = capability.partition(".")
        member = f"SM{major}{minor or '0'}"
        known = self.known_compute_capabilities()
        if capability not in known:
            raise BackendError(
                f"{self.name} {self.version} cannot target compute capability {capability} "
                f"(it knows {', '.join(known) or 'none'})"
            )
        return getattr(self.module.ComputeCapability, member)

    def known_compute_capabilities(self) -> list[str]:
        """Compute capabilities the library can build for ahead of time, as "major.minor" strings."""
        if not self.targets_compute_capabilities:
            return []
        names = [n for n in self.module.ComputeCapability.__members__ if n.startswith("SM")]
        return [f"{n[2:-1]}.{n[-1]}" for n in names]


def import_tensorrt(flavor: str | None = None) -> TensorRTLibrary:
    """Import the named TensorRT flavour ("rtx" or "tensorrt"), or the first installed when ``None``
    (full TensorRT first: on a machine that has it, it is the one matched to the GPU)."""
    if flavor is not None and flavor not in FLAVORS:
        raise BackendError(f"unknown TensorRT flavour {flavor!r} (known: {', '.join(FLAVORS)})")
    wanted = [flavor] if flavor else ["tensorrt", "rtx"]
    missing = []
    for name in wanted:
        module_name, install = FLAVORS[name]
        try:
            return TensorRTLibrary(importlib.import_module(module_name), name)
        except ImportError as exc:
            missing.append(f"{module_name} is not installed ({exc.name or exc}); {install}")
    raise NoGpuStackError("TensorRT is not available: " + "; ".join(missing))
