"""`shadematch text-train`, `text-export`, `text-eval`, `text-teacher`: the EAST text detector.

Only argparse at import time (see export.cli); each handler imports what it drives when it runs."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from runtime.cli import add_backend_options
from runtime.cli_groups import MODELS, add_command
from runtime.cli_types import int_range, multiple_of, non_negative_int, positive_float, positive_int, unit_float
from runtime.errors import ShadematchError

from ..extra import needs_export_extra


def register_text_train(commands: argparse._SubParsersAction) -> None:
    p = add_command(commands, "text-train", group=MODELS, summary="train the EAST text detector", description="Train (or resume) EAST on sample directories (labels.jsonl format); uses a GPU when present.")
    p.add_argument("--data", required=True, type=Path, nargs="+", help="sample directories (text-data output, PP-OCR pseudo-labels)")
    p.add_argument("--out", required=True, type=Path, help="run directory: checkpoint.pt, train_log.jsonl; resumes if present")
    p.add_argument("--steps", type=positive_int, default=2000, help="optimiser steps (default: 2000)")
    p.add_argument("--batch-size", type=positive_int, default=8, help="crops per step (default: 8)")
    p.add_argument("--size", type=multiple_of(32), default=256, help="training crop size, a multiple of 32 (default: 256)")
    p.add_argument("--lr", type=positive_float, default=1e-3, help="learning rate (default: 0.001)")
    p.add_argument("--freeze-stages", type=int_range(0, 5), default=2, help="frozen backbone stages, 0..5 (default: 2, for a CPU)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default: 0)")
    p.add_argument("--data-weights", type=positive_float, nargs="+", default=(), help="share of each --data directory in a batch (default: by size)")
    p.add_argument("--init", type=Path, default=None, help="start from this checkpoint's weights, fine-tuning (default: a fresh start)")
    p.add_argument("--until", type=positive_int, default=None, help="stop after this step (checkpointed); run again to "
                   "resume (default: run all --steps)")
    p.add_argument("--score-loss", choices=("dice", "balanced_ce"), default="dice", help="score-map loss (default: dice)")
    p.set_defaults(handler=_text_train)


def _text_train(args: argparse.Namespace) -> int:
    try:
        from .train import TrainConfig, train
    except ImportError as exc:
        raise needs_export_extra(exc) from None
    config = TrainConfig(steps=args.steps, batch_size=args.batch_size, size=args.size, lr=args.lr,
                         freeze_stages=args.freeze_stages, seed=args.seed, data_weights=tuple(args.data_weights),
                         init=str(args.init or ""), score_loss=args.score_loss)
    print(f"checkpoint: {train(args.data, args.out, config, until=args.until)}")
    return 0


def register_text_export(commands: argparse._SubParsersAction) -> None:
    p = add_command(commands, "text-export", group=MODELS, summary="export a trained EAST to ONNX with its card", description="Export an EAST checkpoint to ONNX, measure it on labelled sets, write the model card.")
    p.add_argument("--checkpoint", required=True, type=Path)
    p.add_argument("--out", type=Path, default=Path("engines"), help="output directory (default: engines)")
    p.add_argument("--eval", type=Path, nargs="*", default=[], metavar="NAME=DIR", help="labelled sets to score, e.g. "
                   "synthetic=DIR teacher=DIR (default: none)")
    p.set_defaults(handler=_text_export)


def _text_export(args: argparse.Namespace) -> int:
    try:
        from .evaluate import evaluate_detector
        from .export import export_text_model
        from ..train.checkpoint import load_checkpoint, recorded_config
    except ImportError as exc:
        raise needs_export_extra(exc) from None
    from runtime.reading.detector import TextDetector

    state = load_checkpoint(args.checkpoint)
    training = {"config": recorded_config(state["config"]), "steps_done": state["step"]}
    path = export_text_model(args.checkpoint, args.out, metrics={}, training=training)
    metrics = {}
    with TextDetector.open(path) as detector:
        for spec in args.eval:
            name, _, root = str(spec).partition("=")
            metrics[name] = evaluate_detector(detector, Path(root)).to_dict()
            print(name, metrics[name])
    path = export_text_model(args.checkpoint, args.out, metrics=metrics, training=training)
    print(f"wrote {path}")
    return 0


def register_text_eval(commands: argparse._SubParsersAction) -> None:
    p = add_command(commands, "text-eval", group=MODELS, summary="precision / recall / F of a text model", description="ICDAR-style precision, recall and F-score at IoU 0.5 on a labelled sample directory.")
    p.add_argument("--data", required=True, type=Path, help="sample directory (labels.jsonl)")
    p.add_argument("--model", type=Path, default=None, help="EAST ONNX model (default: the shipped one)")
    p.add_argument("--threshold", type=unit_float, default=0.8, help="text score a box needs (default: 0.8)")
    p.add_argument("--json", action="store_true")
    add_backend_options(p)
    p.set_defaults(handler=_text_eval)


def _text_eval(args: argparse.Namespace) -> int:
    try:
        from .evaluate import evaluate_detector
    except ImportError as exc:
        raise needs_export_extra(exc) from None
    from runtime.reading.detector import DEFAULT_TEXT_MODEL, TextDetector

    with TextDetector.open(args.model or DEFAULT_TEXT_MODEL, args.backend or "auto", args.threads, score_threshold=args.threshold) as detector:
        score = evaluate_detector(detector, args.data).to_dict()
    print(json.dumps(score) if args.json else " ".join(f"{k}={v}" for k, v in score.items()))
    return 0


def register_text_teacher(commands: argparse._SubParsersAction) -> None:
    p = add_command(commands, "text-teacher", group=MODELS, summary="PP-OCR pseudo-labels for real photos", description="Label real photos with the PP-OCR text detector (rapidocr-onnxruntime) for EAST's real-domain training.")
    p.add_argument("--photos", required=True, type=Path, nargs="+", help="photo directories (searched recursively for .jpg/.png)")
    p.add_argument("--out", required=True, type=Path, help="sample directory to write (labels.jsonl + images)")
    p.set_defaults(handler=_text_teacher)


def _text_teacher(args: argparse.Namespace) -> int:
    try:
        from .teacher import pseudo_label
    except ImportError as exc:
        raise needs_export_extra(exc) from None
    photos = sorted(p for root in args.photos for p in root.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not photos:
        raise ShadematchError(f"no .jpg or .png photos under {', '.join(map(str, args.photos))}")
    print(f"wrote {pseudo_label(photos, args.out)} ({len(photos)} photos)")
    return 0

