"""Offline subcommands, registered into `shadematch` through the `shadematch.commands` entry points.

Only argparse at import time: the heavy libraries load when a command runs, and a missing one becomes a
one-line "install the export extra" error.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from runtime.cli import add_backend_options
from runtime.errors import ShadematchError


def _needs_export_extra(exc: ImportError) -> ShadematchError:
    return ShadematchError(f"needs the offline stage: pip install 'shadematch[export]' ({exc.name or exc} is missing)")


def register_build(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("build", help="index a catalogue into a bundle", description="Build a bundle from a catalogue CSV with columns id,image,title[,group].")
    p.add_argument("--catalog", required=True, type=Path, help="catalogue CSV (id,image,title[,group])")
    p.add_argument("--out", required=True, type=Path, help="bundle directory to write")
    p.add_argument("--model", type=Path, default=None, help="visual ONNX model with its .card.json (default: the shipped one)")
    p.add_argument("--skip-bad", action="store_true", help="skip bad rows (each is reported) instead of aborting")
    p.add_argument("--force", action="store_true", help="replace an existing bundle at --out")
    p.add_argument("--k", type=int, default=3, help="visual top-k refined by the text map (default: 3)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--text-top-n", type=int, default=None, help="text neighbours kept per item")
    p.add_argument("--text-threshold", type=float, default=None, help="minimum title cosine similarity")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_backend_options(p)
    p.set_defaults(handler=_build)


def _build(args: argparse.Namespace) -> int:
    try:
        from dataclasses import replace

        from .build import BuildOptions, build_bundle
        from .textmap import TextMapParams
    except ImportError as exc:
        raise _needs_export_extra(exc) from None
    text = TextMapParams()
    text = replace(text, top_n=args.text_top_n or text.top_n,
                   threshold=text.threshold if args.text_threshold is None else args.text_threshold)
    options = BuildOptions(backend=args.backend, threads=args.threads, batch_size=args.batch_size,
                           skip_bad=args.skip_bad, overwrite=args.force, k=args.k, text=text,
                           progress=not args.quiet)
    if args.model is not None:
        options.model = args.model
    report = build_bundle(args.catalog, args.out, options)
    skipped = f", {report.skipped} bad row(s) skipped" if report.skipped else ""
    print(f"built {report.out}: {report.items} items in {report.seconds:.1f} s{skipped}")
    return 0


def register_demo(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("demo", help="build the shipped demo catalogue and query it", description="Build a bundle from the small shipped catalogue of real product photos and query it.")
    p.add_argument("--out", type=Path, default=Path("shadematch-demo"), help="where to write the demo bundle (default: ./shadematch-demo)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_backend_options(p)
    p.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
    try:
        from .demo import run_demo
    except ImportError as exc:
        raise _needs_export_extra(exc) from None
    run_demo(args.out, backend=args.backend, threads=args.threads, progress=not args.quiet)
    return 0


def register_export_model(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("export-model", help="export the visual model to ONNX with its card", description="Export the ImageNet EfficientNet-Lite0 trunk to ONNX (+ model card).")
    p.add_argument("--out", type=Path, default=Path("engines"), help="output directory (default: engines)")
    p.add_argument("--size", type=int, default=320, help="input height and width (default: 320)")
    p.set_defaults(handler=_export_model)


def _export_model(args: argparse.Namespace) -> int:
    try:
        from .onnx_export import export_visual_model
    except ImportError as exc:
        raise _needs_export_extra(exc) from None
    path = export_visual_model(args.out, size=args.size)
    print(f"wrote {path}")
    return 0
