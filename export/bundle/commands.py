"""`shadematch build`, `build-vectors`, `tune` and `update`: the catalogue -> bundle commands.

Only argparse at import time (see export.cli); each handler imports what it drives when it runs."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from runtime.bundle.locate import resolve_bundle
from runtime.cli import add_backend_options, add_bundle_option
from runtime.cli_groups import CATALOGUE, add_command
from runtime.cli_types import fraction, int_at_least, non_negative_float, non_negative_int, positive_float, positive_int, unit_float
from runtime.errors import ShadematchError

from ..extra import needs_export_extra


def register_build(commands: argparse._SubParsersAction) -> None:
    p = add_command(commands, "build", group=CATALOGUE, summary="index a catalogue into a bundle", description="Build a bundle from a catalogue CSV with columns id,image,title[,group], or from a Google Merchant Center product feed (one catalogue image per image_link and additional_image_link, the product's id its group); any other columns (price, SKU, URL, ...) are stored as text and come back with each match as its fields.")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--catalog", type=Path, help="catalogue CSV (id,image,title[,group], other columns: fields); this or --feed, no default")
    source.add_argument("--feed", metavar="FEED", help="a Google Merchant Center product feed (TSV, CSV, "
                        "RSS or Atom XML; a file or an http(s) URL) whose image_link and additional_image_link URLs are fetched; this or --catalog, no default")
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
    p.add_argument("--query-views", choices=("zoom", "off"), default="zoom", help="describe a query photo from its "
                   "crop and central 80%% and 64%% zooms, summed (two more images per photo in the visual model), or from "
                   "its crop alone (default: zoom)")
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
    p.add_argument("--precision", choices=("auto", "fp32", "int8"), default="auto", help="the model's float32 original or its "
                   "INT8 copy (`shadematch quantize`), for the catalogue and the queries alike (default: auto, INT8 where this "
                   "CPU has an INT8 dot-product instruction and the model an INT8 copy, else float32)")
    p.add_argument("--not-found-photos", type=non_negative_int, default=160, metavar="N", help="generated non-product photos "
                   "that, with store-like views of the catalogue, fit the bundle's match confidence and its 'no matching "
                   "product' threshold (default: 160; 0 = no confidence model, every photo is answered found)")
    add_feed_options(p)
    add_backend_options(p)
    p.set_defaults(handler=_build)


def add_feed_options(p: argparse.ArgumentParser) -> None:
    """How --feed's images are fetched (export.feeds.fetch)."""
    from ..feeds.options import DEFAULT_CACHE, FetchOptions

    base = FetchOptions()
    feed = p.add_argument_group("product feed images (--feed)")
    feed.add_argument("--image-cache", type=Path, default=DEFAULT_CACHE, metavar="DIR", help="the persistent image "
                      f"cache, revalidated with ETag/Last-Modified (default: {DEFAULT_CACHE})")
    feed.add_argument("--fetch-workers", type=positive_int, default=base.workers, metavar="N",
                      help=f"downloads at once (default: {base.workers})")
    feed.add_argument("--fetch-timeout", type=positive_float, default=base.timeout_s, metavar="S",
                      help=f"seconds to connect, and of silence while reading (default: {base.timeout_s:g})")
    feed.add_argument("--fetch-retries", type=non_negative_int, default=base.retries, metavar="N",
                      help=f"tries after a failed one, with exponential backoff (default: {base.retries})")
    feed.add_argument("--max-image-mb", type=positive_float, default=base.max_bytes / 2**20, metavar="MB",
                      help=f"largest image accepted (default: {base.max_bytes / 2**20:g})")


def read_feed_source(args: argparse.Namespace):
    """The --feed as a catalogue (export.bundle.catalog.LoadedCatalog), its images fetched; the fetch counts are
    printed on stderr."""
    import sys

    from ..feeds.catalog import load_feed
    from ..feeds.options import FetchOptions

    options = FetchOptions(workers=args.fetch_workers, timeout_s=args.fetch_timeout, retries=args.fetch_retries,
                           max_bytes=int(args.max_image_mb * 2**20))
    loaded = load_feed(args.feed, args.image_cache, options, progress=not args.quiet)
    print(f"shadematch: {loaded.note}", file=sys.stderr)
    return loaded


def _add_reduce_dim(p: argparse.ArgumentParser) -> None:
    """`--reduce-dim` of `build-vectors` (export.bundle.projection): descriptors without images or groups get a PCA."""
    p.add_argument("--reduce-dim", type=non_negative_int, default=0, metavar="N", help="index the descriptors in a PCA space of N "
                   "dims, learned on the catalogue (large catalogues: a smaller, faster index; default 0: off)")


def _build(args: argparse.Namespace) -> int:
    try:
        from dataclasses import replace

        from .build import BuildOptions, build_bundle
        from .confidence import CalibrationOptions
        from .textmap import TextMapParams
    except ImportError as exc:
        raise needs_export_extra(exc) from None
    from runtime.describe.views import QueryViews

    text = TextMapParams()
    text = replace(text, top_n=args.text_top_n or text.top_n,
                   threshold=text.threshold if args.text_threshold is None else args.text_threshold)
    options = BuildOptions(backend=args.backend or "auto", threads=args.threads, batch_size=args.batch_size,
                           skip_bad=args.skip_bad, overwrite=args.force, k=args.k, vote=args.vote, pictures=not args.no_pictures, text=text,
                           progress=not args.quiet, engines=tuple(args.engines), bundle_backend=args.default_backend,
                           workers=args.workers, work_dir=args.work_dir, ray=args.ray, projection=args.projection,
                           reduce_dim=args.reduce_dim, views=args.views, shrinkage=args.shrinkage, ocr=args.ocr == "on",
                           precision=args.precision, query_views=QueryViews() if args.query_views == "zoom" else None,
                           calibration=CalibrationOptions(non_products=args.not_found_photos) if args.not_found_photos else None)
    if args.label_weight is not None:
        options.label_weight = args.label_weight
    if args.model is not None:
        options.model = args.model
    report = build_bundle(read_feed_source(args) if args.feed is not None else args.catalog, args.out, options)
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
        raise needs_export_extra(exc) from None
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
    p.add_argument("--feedback", type=Path, default=None, metavar="DB", help="a kiosk's feedback database (kiosk "
                   "--feedback-db): its confirmed photos become catalogue images of their products, shown by the "
                   "product's own picture; confirmations against a strong match of another product are held back "
                   "and listed (default: none)")
    p.add_argument("--feed", default=None, metavar="FEED", help="a product feed (file or URL, as build --feed) that is the "
                   "whole new catalogue: its new rows are added, changed ones (image, title, fields) replaced, rows it "
                   "no longer has removed (feedback rows of its products stay); not with --add, --remove or --replace (default: none)")
    p.add_argument("--out", required=True, type=Path, help="where to write the new bundle (may be --bundle with --force)")
    p.add_argument("--force", action="store_true", help="replace an existing bundle at --out")
    p.add_argument("--skip-bad", action="store_true", help="skip bad rows of the delta (each is reported); with --feed, "
                   "a bundle row whose feed row is bad is removed")
    p.add_argument("--workers", type=non_negative_int, default=0, help="worker processes for the added images (default: one process)")
    p.add_argument("--full-text-map", action="store_true", help="recompute the whole text map (always done below "
                   "50,000 titles)")
    p.add_argument("--refit", choices=("auto", "on", "off"), default="auto", help="re-fit an adapted projection on the "
                   "final catalogue from its stored rows; auto: below 50,000 rows, when no product needs store-like views (default: auto)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print what changed as JSON")
    add_feed_options(p)
    add_backend_options(p)
    p.set_defaults(handler=_update)


def _update(args: argparse.Namespace) -> int:
    try:
        from .update import UpdateOptions, update_bundle
    except ImportError as exc:
        raise needs_export_extra(exc) from None
    bundle = _bundle_to_change(args, "updated")
    if args.feed is not None and (args.add or args.remove or args.replace):  # said before the images are fetched
        raise ShadematchError("--feed is the whole catalogue: give it without --add, --remove or --replace")
    feed = read_feed_source(args) if args.feed is not None else None
    options = UpdateOptions(backend=args.backend or "auto", threads=args.threads, workers=args.workers,
                            skip_bad=args.skip_bad, overwrite=args.force, full_text_map=args.full_text_map,
                            progress=not args.quiet, refit={"auto": None, "on": True, "off": False}[args.refit])
    report = update_bundle(bundle, args.out, args.add, args.remove, args.replace, options, args.add_vectors,
                           args.feedback, feed)
    if args.json:
        print(json.dumps(report.to_dict()))
        return 0
    if report.feedback is not None:
        fed = report.feedback
        print(f"feedback: {fed['added']} confirmed photo(s) added, {len(fed['held_back'])} held back, "
              f"{fed['not_here']} 'not here' (the confidence model's negatives), {fed['product_gone']} of products "
              f"gone, {fed['already_in_bundle']} already in the bundle")
        for held in fed["held_back"]:
            print(f"  held back {held['query_id']}: confirmed {held['confirmed']!r}, but the photo matched "
                  f"{held['best_match']!r} at confidence {held['best_confidence']}")
    skipped = f", {report.skipped} bad row(s) skipped" if report.skipped else ""
    print(f"updated {report.out}: {report.items} items (+{report.added} added, -{report.removed} removed, "
          f"{report.replaced} replaced{skipped}); index {report.index}, text map {report.text_map}; "
          f"{report.seconds:.1f} s")
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
        raise needs_export_extra(exc) from None
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

