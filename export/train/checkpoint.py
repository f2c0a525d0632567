"""Resumable training state: one checkpoint file written atomically, refused if the configuration changed."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

CHECKPOINT = "checkpoint.pt"


def save_checkpoint(path: Path, step: int, config: dict[str, Any], **state_dicts: Any) -> None:
    """Write model / optimiser / schedule states and the step (temporary file, then rename)."""
    tmp = path.with_suffix(".tmp")
    torch.save({"step": step, "config": config, **{k: v.state_dict() for k, v in state_dicts.items()}}, tmp)
    os.replace(tmp, path)


def resume(path: Path, config: dict[str, Any], device: str, **modules: Any) -> int:
    """Load a checkpoint into ``modules`` if it exists; returns the step to continue from (0: fresh start)."""
    if not path.exists():
        return 0
    state = torch.load(path, map_location=device, weights_only=False)
    if state["config"] != config:
        raise ValueError(f"{path} was made with another configuration: {state['config']}")
    for name, module in modules.items():
        module.load_state_dict(state[name])
    return int(state["step"])
