"""Offline subcommands, registered into `shadematch` through the `shadematch.commands` entry points
(pyproject.toml names the functions of this module, so the entry points outlive any move of a handler).

Each command lives beside the code it drives (`<room>/commands.py`); this module only gathers them. Only argparse
at import time: the heavy libraries load when a command runs, and a missing one becomes a one-line "install the
export extra" error (`export.extra`).
"""
from __future__ import annotations

from .bundle.commands import register_build, register_build_vectors, register_tune, register_update
from .demo.commands import register_demo
from .onnx.commands import register_export_model, register_quantize
from .text.commands import register_text_eval, register_text_export, register_text_teacher, register_text_train
from .train.commands import register_train
from .synthetic.commands import register_synth_catalog, register_text_data
from .engine.commands import register_engine

__all__ = [
    "register_build",
    "register_tune",
    "register_update",
    "register_build_vectors",
    "register_demo",
    "register_export_model",
    "register_quantize",
    "register_text_train",
    "register_text_export",
    "register_text_eval",
    "register_text_teacher",
    "register_train",
    "register_synth_catalog",
    "register_text_data",
    "register_engine",
]
