"""`shadematch engine build`: TensorRT plans.

Only argparse at import time (see export.cli); each handler imports what it drives when it runs."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from runtime.cli_groups import MODELS, add_command
from runtime.cli_types import positive_int

from ..extra import needs_export_extra


def register_engine(commands: argparse._SubParsersAction) -> None:
    p = add_command(commands, "engine", group=MODELS, summary="TensorRT engines from ONNX models", description="Build TensorRT engine plans (with sidecar manifests) from the ONNX models.")
    actions = p.add_subparsers(dest="engine_command", required=True, metavar="ACTION")
    b = actions.add_parser("build", help="build a plan from an ONNX model and its card",
                           description="ONNX -> TensorRT plan + NAME.plan.json manifest. TensorRT for RTX (--flavor rtx) builds "
                                       "ahead of time without a GPU for a list of compute capabilities; full TensorRT builds "
                                       "for the GPU it runs on.")
    b.add_argument("--onnx", required=True, type=Path, nargs="+", help="ONNX model(s) with their .card.json")
    b.add_argument("--out", type=Path, default=Path("engines/build"), help="output folder (default: engines/build)")
    b.add_argument("--flavor", choices=("tensorrt", "rtx"), default=None, help="TensorRT flavour (default: the first installed, full TensorRT first)")
    b.add_argument("--precision", choices=("fp32", "fp16", "int8"), default="fp32", help="int8: explicit Q/DQ calibrated on --calibration photos (default: fp32)")
    b.add_argument("--max-batch", type=positive_int, default=16, help="largest batch of the optimisation profile (default: 16)")
    b.add_argument("--compute-capability", nargs="+", default=(), metavar="X.Y", help="RTX targets, e.g. 8.6 8.9 (default: 8.0 8.6 8.9 12.0 12.1)")
    b.add_argument("--calibration", type=Path, default=None, help="catalogue CSV whose photos calibrate INT8 (default: the demo catalogue)")
    b.add_argument("--calibration-count", type=positive_int, default=32, help="calibration photos (default: 32)")
    b.add_argument("--calibration-method", choices=("percentile", "minmax", "entropy"), default="percentile", help="INT8 activation ranges (default: percentile 99.99)")
    b.add_argument("--timing-cache", type=Path, default=None, help="timing cache file, reused across builds (default: OUT/timing.cache; full TensorRT)")
    b.set_defaults(handler=_engine_build)


def _engine_build(args: argparse.Namespace) -> int:
    try:
        from .build import DEMO_CATALOG, EngineBuildOptions, build_engine
    except ImportError as exc:
        raise needs_export_extra(exc) from None
    options = EngineBuildOptions(
        flavor=args.flavor, precision=args.precision, max_batch=args.max_batch,
        compute_capabilities=tuple(args.compute_capability), calibration_catalog=args.calibration or DEMO_CATALOG,
        calibration_count=args.calibration_count, calibration_method=args.calibration_method, timing_cache=args.timing_cache,
    )
    for onnx in args.onnx:
        report = build_engine(onnx, args.out, options)
        m = report.manifest
        print(f"built {report.plan} ({m.library_module} {m.library_version}, {m.precision}, "
              f"compute capability {' '.join(m.compute_capabilities)}, {m.plan_bytes / 1e6:.1f} MB) in {report.seconds:.1f} s")
    return 0

