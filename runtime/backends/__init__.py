"""Backend factory: imports each backend lazily, so a missing optional engine is a clear error, not a crash.

Each backend is one small module registered here by name.
"""
from __future__ import annotations

import importlib
import logging
import os
from pathlib import Path
from typing import Any

from ..engines.plans import NoPlanError
from ..errors import BackendError
from .base import Backend, TensorSpec

LOG = logging.getLogger("shadematch")

#: name -> (module, class, the pip extra that provides its library, how a log line names it)
_REGISTRY: dict[str, tuple[str, str, str, str]] = {
    "tensorrt": ("runtime.backends.tensorrt", "TensorRTBackend", "shadematch[gpu], or shadematch[rtx] and pycuda",
                 "TensorRT (GPU)"),
    "onnxruntime": ("runtime.backends.onnxruntime", "OnnxRuntimeBackend", "shadematch", "ONNX Runtime (CPU)"),
}
#: Order in which "auto" tries backends; the first that loads the model wins. TensorRT comes first because it
#: loads only when a plan built from this very model fits this GPU and library (else it says why: see _open_auto
#: for what is logged).
AUTO_ORDER: tuple[str, ...] = ("tensorrt", "onnxruntime")


def usable_cores() -> int:
    """Cores this process may run on: its CPU affinity where the OS reports one (a container's share), else all."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def backend_names() -> list[str]:
    """Every registered backend name, plus "auto"."""
    return ["auto", *_REGISTRY]


def open_backend(model_path: str | Path, kind: str = "auto", **options: Any) -> Backend:
    """Load ``model_path`` with the named backend ("auto" picks the first usable one in AUTO_ORDER)."""
    if kind == "auto":
        return _open_auto(model_path, **options)
    try:
        module_name, class_name, extra, _ = _REGISTRY[kind]
    except KeyError:
        raise BackendError(f"unknown backend {kind!r} (known: {', '.join(backend_names())})") from None
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise BackendError(f"backend {kind!r} is not installed ({exc.name or exc}); install {extra}") from None
    return getattr(module, class_name)(model_path, **options)


def _open_auto(model_path: str | Path, **options: Any) -> Backend:
    """The first backend of AUTO_ORDER that loads the model. A CPU machine (no plan for it, no TensorRT) is the
    normal case and gets one calm INFO line naming the backend chosen; a plan that exists but cannot run here is
    a fault in the setup, logged as a WARNING with the reason."""
    name = Path(model_path).name
    errors: list[str] = []
    no_plan = False
    for kind in AUTO_ORDER:
        try:
            backend = open_backend(model_path, kind, **options)
        except NoPlanError as exc:
            errors.append(str(exc))
            no_plan = True
            continue
        except BackendError as exc:
            errors.append(str(exc))
            LOG.warning("backend %s not used for %s: %s", kind, name, exc)
            continue
        if no_plan:
            LOG.info("backend: %s for %s; no TensorRT plan for this machine", _REGISTRY[kind][3], name)
        return backend
    raise BackendError("no backend could load the model: " + "; ".join(errors))


__all__ = ["Backend", "TensorSpec", "backend_names", "open_backend", "usable_cores", "AUTO_ORDER"]
