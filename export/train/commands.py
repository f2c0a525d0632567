"""`shadematch train`: MANet training on a catalogue.

Only argparse at import time (see export.cli); each handler imports what it drives when it runs."""
from __future__ import annotations

import argparse
from pathlib import Path

from runtime.cli_groups import MODELS, add_command
from runtime.cli_types import (int_range, multiple_of, non_negative_float, non_negative_int, positive_float, positive_int,
                               unit_float)
from runtime.errors import ShadematchError

from ..extra import needs_export_extra


def register_train(commands: argparse._SubParsersAction) -> None:
    p = add_command(commands, "train", group=MODELS, summary="train MANet on a catalogue", description="Train (or resume) MANet: classification on the catalogue's groups (or TF-IDF keyword categories of its titles) + Dice on pseudo-saliency masks (Wang et al., Sci China Inf Sci 2020).")
    p.add_argument("--catalog", required=True, type=Path, help="training catalogue CSV (id,image,title[,group])")
    p.add_argument("--out", required=True, type=Path, help="run directory: checkpoint.pt, train_log.jsonl; resumes if present")
    p.add_argument("--east", type=Path, default=None, help="the frozen text branch: an EAST training checkpoint or the shipped engines/east_lite0.onnx (default: none; needed unless --no-text)")
    p.add_argument("--init", type=Path, default=None, metavar="MANET_ONNX", help="start from a shipped MANet ONNX file (e.g. engines/manet_lite0.onnx) instead of the ImageNet backbone (default: the ImageNet backbone)")
    p.add_argument("--fresh-views", action="store_true", help="new augmented views every step instead of a fixed cache (slower steps, no memorised views)")
    p.add_argument("--steps", type=positive_int, default=1500, help="optimiser steps (default: 1500)")
    p.add_argument("--batch-size", type=positive_int, default=32, help="images per step (default: 32)")
    p.add_argument("--size", type=multiple_of(32), default=256, help="training input size, a multiple of 32 (default: 256)")
    p.add_argument("--views", type=positive_int, default=2, help="augmented views cached per photo (default: 2)")
    p.add_argument("--catalogue-views", type=non_negative_int, default=16, help="augmented store-like views per catalogue "
                   "cut-out (default: 16)")
    p.add_argument("--lr", type=positive_float, default=1e-3, help="learning rate (default: 0.001)")
    p.add_argument("--backbone-lr-scale", type=non_negative_float, default=0.1, help="backbone learning rate / --lr; 0 "
                   "keeps the ImageNet backbone (default: 0.1)")
    p.add_argument("--lambda-dice", type=non_negative_float, default=0.5, help="weight of the saliency Dice loss (default: 0.5)")
    p.add_argument("--no-saliency", action="store_true", help="ablation: S := 1")
    p.add_argument("--no-text", action="store_true", help="ablation: T := 1 (no EAST needed)")
    p.add_argument("--train-from-block", type=int_range(11, 16), default=15, help="backbone blocks before this are frozen "
                   "and cached, 11..16 (default: 15)")
    p.add_argument("--text-scale", type=positive_float, default=1.0, help="EAST's input scale inside MANet; 0.5 costs a "
                   "quarter (default: 1.0)")
    p.add_argument("--head", choices=("linear", "cosine"), default="linear", help="training head: softmax or normalised (cosine) softmax (default: linear)")
    p.add_argument("--pool", choices=("avg", "gem", "srmac"), default="avg", help="pooling before the training head; srmac: the indexed SR-MAC descriptor itself (default: avg)")
    p.add_argument("--label-smoothing", type=unit_float, default=0.0, help="label smoothing of the classification loss (default: 0)")
    p.add_argument("--margin", type=unit_float, default=0.0, help="additive cosine margin on the own-class logit (CosFace), "
                   "cosine head only (default: 0)")
    p.add_argument("--cross-domain", type=non_negative_float, default=0.0, help="weight of a cross-domain loss on paired "
                   "batches (a catalogue view and a store photo of each product; needs --fresh-views --pool srmac) "
                   "(default: 0)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default: 0)")
    p.add_argument("--until", type=positive_int, default=None, help="stop after this step (checkpointed); run again to "
                   "resume (default: run all --steps)")
    p.add_argument("--skip-bad", action="store_true", help="skip bad catalogue rows (each is reported)")
    p.set_defaults(handler=_train)


def _train(args: argparse.Namespace) -> int:
    try:
        from ..bundle.catalog import read_catalog_csv, settle_problems
        from .categories import categories_from_groups, categories_from_titles
        from .manet import ManetConfig, load_examples, train_manet
    except ImportError as exc:
        raise needs_export_extra(exc) from None
    if not args.no_text and args.east is None:
        raise ShadematchError("the text branch needs --east CHECKPOINT (or --no-text)")
    if args.margin and args.head != "cosine":
        raise ShadematchError(f"--margin {args.margin} needs --head cosine")
    if args.cross_domain and not (args.fresh_views and args.pool == "srmac"):
        raise ShadematchError(f"--cross-domain {args.cross_domain} needs --fresh-views and --pool srmac")
    rows, problems = read_catalog_csv(args.catalog)
    settle_problems(args.catalog, problems, args.skip_bad)
    found = categories_from_groups([row.group for row in rows], [row.id for row in rows])
    labels, names = found if found else categories_from_titles([row.title for row in rows])
    config = ManetConfig(steps=args.steps, batch_size=args.batch_size, size=args.size, lr=args.lr,
                         lambda_dice=args.lambda_dice, use_saliency=not args.no_saliency, use_text=not args.no_text,
                         east_checkpoint=str(args.east or ""), seed=args.seed, views=args.views,
                         catalogue_views=args.catalogue_views, train_from_block=args.train_from_block,
                         text_scale=args.text_scale, head=args.head, pool=args.pool,
                         backbone_lr_scale=args.backbone_lr_scale,
                         label_smoothing=args.label_smoothing, margin=args.margin, cross_domain=args.cross_domain, fresh_views=args.fresh_views,
                         init_onnx=str(args.init or ""))
    examples = load_examples(rows, labels, max_side=int(args.size * 1.5))
    print(f"{len(examples)} training images in {len(names)} categories "
          f"({sum(e.catalogue for e in examples)} catalogue cut-outs)")
    print(f"checkpoint: {train_manet(examples, len(names), args.out, config, until=args.until)}")
    return 0

