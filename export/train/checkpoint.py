"""Resumable training state: one checkpoint file written atomically, refused if the configuration changed."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from runtime.errors import ShadematchError

CHECKPOINT = "checkpoint.pt"


class CheckpointError(ShadematchError):
    """A file that is not a readable shadematch training checkpoint (missing, foreign, or holding code)."""


def save_checkpoint(path: Path, step: int, config: dict[str, Any], **state_dicts: Any) -> None:
    """Write model / optimiser / schedule states and the step (temporary file, then rename)."""
    tmp = path.with_suffix(".tmp")
    torch.save({"step": step, "config": config, **{k: v.state_dict() for k, v in state_dicts.items()}}, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path, device: str = "cpu") -> dict[str, Any]:
    """A checkpoint's contents, read without running code: PyTorch's weights-only unpickler allows tensors and plain
    containers of numbers and strings only, so a checkpoint someone hands over cannot execute anything on load.
    CheckpointError (one line, naming the file) when the file is not such a checkpoint."""
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint") from None
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError, ... for a bad or foreign file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: not a shadematch training checkpoint ({first})") from None
    if not isinstance(state, dict) or "config" not in state or "model" not in state:
        raise CheckpointError(f"{path}: not a shadematch training checkpoint (no config and model)")
    return state


def resume(path: Path, config: dict[str, Any], device: str, defaults: dict[str, Any] | None = None,
           **modules: Any) -> int:
    """Load a checkpoint into ``modules`` if it exists; returns the step to continue from (0: fresh start).
    ``defaults``: values of configuration fields added after a checkpoint was written (it was made with them)."""
    if not path.exists():
        return 0
    state = load_checkpoint(path, device)
    if {**(defaults or {}), **state["config"]} != config:
        raise ValueError(f"{path} was made with another configuration: {state['config']}")
    for name, module in modules.items():
        module.load_state_dict(state[name])
    return int(state["step"])


#: Training-config fields that name files on the machine that trained (checkpoints, shipped models).
PATH_FIELDS = ("init", "init_onnx", "east_checkpoint")


def recorded_config(config: dict[str, Any]) -> dict[str, Any]:
    """A training config as a model card records it: each file it names becomes its name and sha256 (None when the
    file is gone), never the absolute path of the machine it was trained on."""
    from runtime.bundle import sha256_file  # the runtime's one hashing helper

    recorded = dict(config)
    for key in PATH_FIELDS:
        value = recorded.get(key)
        if value:
            path = Path(value)
            recorded[key] = {"name": path.name, "sha256": sha256_file(path) if path.is_file() else None}
    return recorded
