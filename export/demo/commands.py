"""`shadematch demo`.

Only argparse at import time (see export.cli); each handler imports what it drives when it runs."""
from __future__ import annotations

import argparse
from pathlib import Path

from runtime.cli import add_backend_options
from runtime.cli_groups import CATALOGUE, add_command

from ..extra import needs_export_extra


def register_demo(commands: argparse._SubParsersAction) -> None:
    p = add_command(commands, "demo", group=CATALOGUE, summary="build the shipped demo catalogue and query it", description="Build a bundle from the small shipped catalogue of real product photos and query it with the shipped shopper photos; it ends by saying where those photos are and how to query the bundle and open the kiosk on it.")
    p.add_argument("--out", type=Path, default=Path("shadematch-demo"), help="where to write the demo bundle (default: ./shadematch-demo)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_backend_options(p)
    p.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
    try:
        from .run import run_demo
    except ImportError as exc:
        raise needs_export_extra(exc) from None
    run_demo(args.out, backend=args.backend or "auto", threads=args.threads, progress=not args.quiet)
    return 0

