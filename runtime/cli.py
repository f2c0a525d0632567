"""The `shadematch` command. Query-time subcommands live here; offline ones (build, demo, export-model)
are registered by the `export` package through the `shadematch.commands` entry-point group, so this
module never imports `export` and a base install still queries bundles."""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from importlib import metadata
from pathlib import Path
from typing import Callable, Sequence

from . import __version__
from .backends import backend_names
from .errors import ShadematchError
from .bundle.locate import resolve_bundle
from .tools.plain import print_results
from .cli_groups import NOT_INSTALLED, QUERY_TIME, add_command, command_listing
from .cli_types import int_range, non_negative_int, positive_float, positive_int
from .feedback.command import register_feedback

ENTRY_POINT_GROUP = "shadematch.commands"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except ShadematchError as exc:
        print(f"shadematch {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"shadematch {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`shadematch query ... | head`): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shadematch", description="Find the exact catalogue product in a shopper's photo.",
        formatter_class=argparse.RawDescriptionHelpFormatter,  # keeps the epilog's command listing as written
    )
    parser.add_argument("--version", action="version", version=f"shadematch {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                     help="one of the commands below; `shadematch COMMAND --help` tells its options")
    _register_query(commands)
    _register_info(commands)
    _register_eval(commands)
    _register_text(commands)
    _register_kiosk(commands)
    register_feedback(commands)
    _register_bench(commands)
    for entry in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            register: Callable[[argparse._SubParsersAction], None] = entry.load()
        except ImportError as exc:
            _register_unavailable(commands, entry.name, exc)
            continue
        register(commands)
    parser.epilog = command_listing(commands.choices)
    return parser


def add_bundle_option(parser: argparse.ArgumentParser) -> None:
    """--bundle; the standalone executable falls back to the bundle beside it (runtime.bundle.locate)."""
    parser.add_argument("--bundle", type=Path, default=None,
                        help="bundle directory (standalone executable: default bundle/ beside it)")


def add_backend_options(parser: argparse.ArgumentParser) -> None:
    """--backend and --threads, shared by every command that runs a model."""
    parser.add_argument("--backend", choices=backend_names(), default=None,
                        help="inference backend (default: the bundle's choice, else auto: TensorRT when a plan fits this GPU, else ONNX Runtime)")
    parser.add_argument("--threads", type=positive_int, default=None, help="CPU threads for the model (default: all cores)")


def add_ocr_option(parser: argparse.ArgumentParser) -> None:
    """--ocr on|off, shared by every command that queries a bundle."""
    parser.add_argument("--ocr", choices=("on", "off"), default=None, help="read the text on the photo and fuse it with "
                        "the visual search (default: on when the bundle carries a label index)")


def ocr_choice(args: argparse.Namespace) -> bool | None:
    """--ocr as Retriever.open takes it: None (the bundle decides), True or False."""
    return None if args.ocr is None else args.ocr == "on"


def _register_query(commands: argparse._SubParsersAction) -> None:
    p = add_command(commands, "query", group=QUERY_TIME, summary="find the catalogue products in photos", description="Find the 7 best catalogue products for each photo.")
    add_bundle_option(p)
    p.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="photo file(s)")
    p.add_argument("--k", type=non_negative_int, default=None, help="visual top-k whose text neighbours refine the rest; "
                   "0 = visual only (default: the bundle's)")
    p.add_argument("--top", type=positive_int, default=7, help="results per photo (default: 7)")
    p.add_argument("--all-images", action="store_true", help="rank catalogue images, several of one product allowed "
                   "(default: one result per product, by its best image)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_ocr_option(p)
    add_backend_options(p)
    p.set_defaults(handler=_query)


def _query(args: argparse.Namespace) -> int:
    from .errors import ImageError, at_position
    from .results import failed_result, result_dict, results_document
    from .retriever import Retriever

    ocr = ocr_choice(args)
    options = dict(k=args.k, top=args.top, distinct=not args.all_images, ocr=ocr)
    images = list(args.images)
    with Retriever.open(resolve_bundle(args.bundle), backend=args.backend, threads=args.threads, ocr=ocr) as retriever:
        results: list[dict] = []
        while len(results) < len(images):  # an unusable photo gets its error; the photos after it go on in a batch
            start = len(results)
            try:
                answers = retriever.answer(images[start:], **options)
            except ImageError as exc:
                if exc.position is None:
                    raise
                bad = start + exc.position
                answers = retriever.answer(images[start:bad], **options) if bad > start else []
                results += [result_dict(answer, str(image)) for image, answer in zip(images[start:bad], answers)]
                results.append(failed_result(str(images[bad]), at_position(exc, bad, len(images))))
                continue
            results += [result_dict(answer, str(image)) for image, answer in zip(images[start:], answers)]
        threshold = retriever.threshold
    if args.json:
        print(json.dumps(results_document(results, threshold), ensure_ascii=False))
    else:
        print_results(results, threshold)
    failed = [result["error"]["message"] for result in results if result["error"] is not None]
    for message in failed:  # one line each on stderr too, for scripts that read only that
        print(f"shadematch query: {message}", file=sys.stderr)
    if failed and len(results) > 1:
        print(f"shadematch query: {len(failed)} of {len(results)} photos could not be used", file=sys.stderr)
    return 1 if failed else 0


def _register_info(commands: argparse._SubParsersAction) -> None:
    p = add_command(commands, "info", group=QUERY_TIME, summary="describe and verify a bundle", description="Verify a bundle's checksums and describe it.")
    add_bundle_option(p)
    p.add_argument("--json", action="store_true", help="print the manifest as JSON")
    p.set_defaults(handler=_info)


def _info(args: argparse.Namespace) -> int:
    from .bundle import open_bundle

    bundle = open_bundle(resolve_bundle(args.bundle))
    manifest = bundle.manifest
    if args.json:
        print(json.dumps(manifest, indent=2, ensure_ascii=False))
        return 0
    meta = bundle.meta
    print(f"bundle      {bundle.path} (format {meta.version}, checksums OK)")
    print(f"created     {_shown(manifest, 'created')} by shadematch {_shown(manifest, 'shadematch_version')}")
    print(f"catalogue   {len(bundle.catalog)} items in {_shown(manifest, 'catalog', 'groups')} product groups")
    print(f"model       {bundle.card.name} ({bundle.card.input.width}x{bundle.card.input.height}, descriptor {meta.dim}-d)")
    print(f"projection  {describe_projection(manifest['descriptor'].get('projection'))}")
    views = bundle.query_views
    print("query views " + (f"the photo and its central {' and '.join(f'{z:.0%}' for z in views.zooms)} zooms, summed "
                            f"(zoom weight {views.weight:g})" if views else "the photo alone"))
    print(f"index       {bundle.index.kind}" + (f" (M={meta.index.M}, ef={meta.index.ef})" if bundle.index.kind == "hnsw" else ""))
    print(f"text map    {len(bundle.text_map.indices)} neighbour links (top {_shown(manifest, 'text_map', 'top_n')}, "
          f"threshold {_shown(manifest, 'text_map', 'threshold')})")
    print(f"search      k={bundle.k}, top={bundle.top}, vote={bundle.vote}")
    labels = manifest.get("labels")
    print("labels      " + (f"{_shown(labels, 'products')} products indexed by {_shown(labels, 'words_read')} words read on "
                             f"their images and their titles ({_shown(labels, 'grams')} 3-grams), weight {_shown(labels, 'weight')}"
                             if labels else "none (queries answer from the image alone; rebuild with --ocr on to read labels)"))
    confidence = manifest.get("confidence")
    print("not found   " + (f"under confidence {_shown(confidence, 'threshold')}, fitted by {_shown(confidence, 'fitted')} on "
                             f"{_shown(confidence, 'views')} store-like views, {_shown(confidence, 'labelled_photos')} "
                             f"labelled photos and {_shown(confidence, 'non_products')} generated non-product photos"
                             if isinstance(confidence, dict) else "never (no confidence model: rebuild to get one)"))
    print(f"backend     {bundle.backend}")
    lineage = manifest.get("lineage")
    if isinstance(lineage, dict):
        print(f"updated     {_shown(lineage, 'created')} from {_shown(lineage, 'parent', 'path')} "
              f"(+{_shown(lineage, 'added')} -{_shown(lineage, 'removed')} ~{_shown(lineage, 'replaced')}; index "
              f"{_shown(lineage, 'index')}, text map {_shown(lineage, 'text_map')}; update "
              f"{_shown(lineage, 'updates_since_build')} since the build)")
    for entry in manifest.get("engines", []):
        print(f"engine      {_shown(entry, 'plan')} ({_shown(entry, 'flavor')} {_shown(entry, 'library_version')}, "
              f"{_shown(entry, 'precision')}, compute capability {_shown(entry, 'compute_capabilities')})")
    return 0


def _shown(section: object, *keys: str) -> str:
    """A descriptive manifest value for `info`, '?' where it is absent or not of the expected shape: these fields
    only describe the bundle (the checked ones come from its Manifest), so an odd one must not stop `info`."""
    for key in keys:
        section = section.get(key) if isinstance(section, dict) else None
    if isinstance(section, list):
        return " ".join(str(item) for item in section)
    return "?" if section is None or isinstance(section, (dict, list)) else str(section)


def describe_projection(info: object) -> str:
    """One line on a bundle's projection and how it was learned (manifest `descriptor.projection`)."""
    if not info or not isinstance(info, dict):
        return "none (SR-MAC descriptors indexed as they are)"
    dims = f"{_shown(info, 'in_dim')} -> {_shown(info, 'out_dim')} dims"
    if info.get("kind") == "pca":
        kept = info.get("variance_kept")
        kept = f"{kept:.0%}" if isinstance(kept, (int, float)) and not isinstance(kept, bool) else "?"
        return f"PCA {dims}, {kept} of the variance kept, fitted on {_shown(info, 'fit_rows')} rows"
    views = (f" + {_shown(info, 'images_with_views')} x {_shown(info, 'views_per_image')} store-like views"
             if info.get("images_with_views") else "")
    since = f"; {_shown(info, 'rows_added_since_fit')} rows added by updates since" if info.get("rows_added_since_fit") else ""
    return (f"adapted to the catalogue's products (regularised LDA) {dims}: {_shown(info, 'groups')} products, "
            f"{_shown(info, 'fit_rows')} samples ({_shown(info, 'variation_from')}{views}), shrinkage "
            f"{_shown(info, 'shrinkage')}, seed {_shown(info, 'seed')}, {_shown(info, 'seconds')} s{since}")


def _register_eval(commands: argparse._SubParsersAction) -> None:
    p = add_command(commands, "eval", group=QUERY_TIME, summary="mAP@7 of a bundle on labelled photos", description="Evaluate a bundle on a queries CSV (image,group[,subset]).")
    add_bundle_option(p)
    p.add_argument("--queries", required=True, type=Path, help="CSV with columns image,group[,subset]")
    p.add_argument("--batch-size", type=positive_int, default=16, help="photos per model run (default: 16)")
    p.add_argument("--non-products", type=non_negative_int, default=160, metavar="N", help="generated non-product photos "
                   "on which 'no matching product' is measured, with a bundle that has a confidence model (default: 160; 0 = skip)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_ocr_option(p)
    add_backend_options(p)
    p.set_defaults(handler=_eval)


def _eval(args: argparse.Namespace) -> int:
    from .tools.evaluate import evaluate, miss_lines, read_queries
    from .retriever import Retriever

    queries = read_queries(args.queries)
    ocr = ocr_choice(args)
    with Retriever.open(resolve_bundle(args.bundle), backend=args.backend, threads=args.threads, ocr=ocr) as retriever:
        report = evaluate(retriever, queries, batch_size=args.batch_size, ocr=ocr, non_products=args.non_products)
    if args.json:
        print(json.dumps(report))
        return 0
    unknown = report["not_in_catalog_count"]
    print(f"{report['queries']} queries" + (f" ({unknown} more not in the catalogue: left out)" if unknown else "")
          + f"; k = {report['k']}")
    print(f"mAP@7 visual {report['map7_visual']:.4f}   two-stage {report['map7']:.4f}")
    print(f"top-1 visual {report['top1_visual']:.4f}   two-stage {report['top1']:.4f}")
    for name, sub in report.get("subsets", {}).items():
        print(f"  {name:12} ({sub['queries']:4} queries): mAP@7 visual {sub['map7_visual']:.4f}  two-stage {sub['map7']:.4f}  top-1 {sub['top1']:.4f}")
    print("k  mAP@7   improved%  impaired%")
    for k, row in report["ablation"].items():
        print(f"{k}  {row['map7']:.4f}  {row['improved_pct']:8.1f}  {row['impaired_pct']:8.1f}")
    off = report.get("ocr_off")
    if off:
        print(f"OCR on: mAP@7 {report['map7']:.4f}, top-1 {report['top1']:.4f}; off: mAP@7 {off['map7']:.4f}, "
              f"top-1 {off['top1']:.4f} ({report['ocr']['photos_with_text']} of {report['queries']} photos gave text)")
        for name, sub in off.get("subsets", {}).items():
            on = report["subsets"][name]
            print(f"  {name:12} product top-1 on {on['products']['top1']:.4f} / off {sub['products']['top1']:.4f}; "
                  f"mAP@7 on {on['map7']:.4f} / off {sub['map7']:.4f}")
    gone = report.get("not_found")
    if gone:
        print(f"not found (threshold {gone['threshold']:.3f}): {gone['rejected']:.1%} of {gone['non_product_photos']} "
              f"generated non-product photos answered 'no matching product'; {gone['real_kept']:.1%} of the real photos "
              f"kept their answer ({gone['right_kept']:.1%} of those answered right; "
              f"{(gone['wrong_rejected'] or 0):.1%} of the wrong answers turned into 'not found')")
    for line in miss_lines(report):
        print(line)
    return 0


def _register_text(commands: argparse._SubParsersAction) -> None:
    p = add_command(commands, "text", group=QUERY_TIME, summary="read the text on a photo", description=(
        "Read the text on a photo (PP-OCRv4 detection and recognition on ONNX Runtime) and print each line with its "
        "confidence and box. With --bundle it reads the product region the bundle's visual model points at, as queries do."))
    p.add_argument("image", type=Path, metavar="IMAGE", help="photo file")
    p.add_argument("--bundle", type=Path, default=None, help="bundle directory: read as its queries do, its reader on the product region its model points at (default: none, the "
                   "whole photo with the shipped reader)")
    p.add_argument("--out", type=Path, default=None, help="write an overlay picture here, in the format its extension "
                   "names: .png, .jpg, .jpeg or .webp; its folder must exist (default: none)")
    p.add_argument("--json", action="store_true", help='print {"words": [{"text", "confidence", "box": [x0, y0, x1, y1]}, ...]}')
    add_backend_options(p)
    p.set_defaults(handler=_text)


def _text(args: argparse.Namespace) -> int:
    from .reading.overlay import draw_overlay, overlay_format
    from .reading.photos import decode_photos
    from .reading.reader import LabelReader
    from .retriever import Retriever

    if args.out is not None:
        overlay_format(args.out)  # refuse a bad --out before the reader runs, not after
    photo = decode_photos([args.image])[0]  # the pixels the reader sees: the boxes are in them
    if args.bundle is not None:
        with Retriever.open(args.bundle, backend=args.backend, threads=args.threads, ocr=True) as retriever:
            words = retriever.read(photo)
    else:
        with LabelReader.open(threads=args.threads) as reader:
            words = reader.read(photo)
    if args.out is not None:
        draw_overlay(photo, words, args.out)
    if args.json:
        print(json.dumps({"words": [word.to_dict() for word in words]}, ensure_ascii=False))
        return 0
    print(f"{args.image}: {len(words)} line(s) read" + (f"; overlay in {args.out}" if args.out else ""))
    for word in words:
        x0, y0, x1, y1 = word.box
        print(f"  {word.confidence:.3f}  {word.text}  ({x0:.0f},{y0:.0f})-({x1:.0f},{y1:.0f})")
    return 0


def _register_kiosk(commands: argparse._SubParsersAction) -> None:
    p = add_command(commands, "kiosk", group=QUERY_TIME, summary="serve the kiosk page and JSON API", description=(
        "Serve the in-store kiosk page (camera or photo upload -> the 7 best catalogue products) and its JSON "
        "API: POST /api/query, POST /api/feedback, GET /api/health, GET /api/catalog/<id>/image, GET /metrics."))
    add_bundle_option(p)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int_range(0, 65535), default=8080, help="TCP port (default: 8080; 0 picks a free one)")
    p.add_argument("--workers", type=positive_int, default=min(4, os.cpu_count() or 1), help="queries run at once (default: cores, at most 4)")
    p.add_argument("--queue", type=non_negative_int, default=None, help="queries that may wait for a worker before 503 (default: 2 x workers)")
    p.add_argument("--timeout", type=positive_float, default=15.0, help="seconds until a query is answered 504 (default: 15)")
    p.add_argument("--max-upload-mb", type=positive_float, default=15.0, help="largest accepted upload in MB (default: 15)")
    p.add_argument("--request-deadline", type=positive_float, default=60.0, help="seconds a request may take to arrive in full, "
                   "however steadily it trickles in (default: 60)")
    p.add_argument("--feedback-db", type=Path, nargs="?", const=Path(FEEDBACK_BESIDE), default=None, metavar="PATH",
                   help="keep shoppers' feedback (POST /api/feedback) with their photos in this SQLite file; alone: "
                   "BUNDLE.data/feedback.sqlite beside the bundle (default: no feedback kept)")
    p.add_argument("--log-format", choices=("text", "json"), default="text", help="log lines as text, or one JSON "
                   "object per line for a log shipper (default: text)")
    p.add_argument("--feedback-days", type=positive_float, default=30.0, help="days feedback is kept (default: 30)")
    p.add_argument("--feedback-max-mb", type=positive_float, default=512.0, help="photos kept at most, in MB (default: 512)")
    add_ocr_option(p)
    add_backend_options(p)
    p.set_defaults(handler=_kiosk)


#: `kiosk --feedback-db` without a path: a data folder beside the bundle (its link, when it is one: reloads flip it).
FEEDBACK_BESIDE = "BUNDLE.data/feedback.sqlite"


def feedback_db_path(bundle: Path, given: Path) -> Path:
    """Where the kiosk keeps feedback: ``given``, or beside ``bundle`` for the default; never inside a bundle."""
    path = bundle.parent / f"{bundle.name}.data" / "feedback.sqlite" if str(given) == FEEDBACK_BESIDE else given
    inside = path.resolve()
    for folder in {bundle.absolute(), bundle.resolve()}:
        if inside.is_relative_to(folder):
            raise ShadematchError(f"the feedback database must not be inside the bundle ({path}): an update or "
                                  "rebuild replaces the bundle's folder; put it beside it")
    return path


def _kiosk(args: argparse.Namespace) -> int:
    from .kiosk.api import KioskLimits
    from .kiosk.logs import configure_logging
    from .kiosk.server import open_kiosk

    configure_logging(args.log_format)
    limits = KioskLimits(max_upload_bytes=int(args.max_upload_mb * 1024 * 1024), timeout_s=args.timeout)
    # Workers run queries side by side: share the cores among them rather than oversubscribe.
    threads = args.threads or max(1, (os.cpu_count() or 1) // args.workers)
    bundle = resolve_bundle(args.bundle)
    feedback = None
    if args.feedback_db is not None:
        from .feedback.store import Feedback, FeedbackStore

        feedback = Feedback(FeedbackStore(feedback_db_path(bundle, args.feedback_db), retention_days=args.feedback_days,
                                          max_bytes=int(args.feedback_max_mb * 1024 * 1024)))
    try:
        server = open_kiosk(bundle, backend=args.backend, threads=threads, host=args.host,
                            port=args.port, workers=args.workers, queue=args.queue, limits=limits,
                            request_deadline_s=args.request_deadline, ocr=ocr_choice(args), feedback=feedback)
    except OSError as exc:
        raise ShadematchError(f"cannot listen on {args.host}:{args.port} ({exc.strerror or exc})") from None
    # Tests and scripts read this line to learn the port when --port 0 is given.
    print(f"shadematch kiosk: serving {server.retriever.bundle.path} on {server.url}", flush=True)
    if feedback is not None:
        print(f"shadematch kiosk: keeping feedback in {feedback.store.path} for {args.feedback_days:g} days", flush=True)
    # SIGTERM (what service managers send) stops like Ctrl-C: queries in flight finish, then the model is released.
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGHUP)}
    terminated = server.stop_on(signal.SIGTERM)
    # SIGHUP: open the bundle path again (an update flipped its symbolic link) and serve it, queries never failing
    server.reload_on(signal.SIGHUP)
    try:
        server.serve_forever()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if terminated.is_set():
        print("shadematch kiosk: stopped by SIGTERM after the queries in flight", flush=True)
    return 0


def _register_bench(commands: argparse._SubParsersAction) -> None:
    p = add_command(commands, "bench", group=QUERY_TIME, summary="per-stage latency, throughput, load time and memory of a bundle", description="Benchmark a bundle on this machine: load times, per-stage latency p50/p95/p99 at batch 1, throughput at batch 1/8/32, peak RSS.")
    add_bundle_option(p)
    p.add_argument("--queries", type=Path, default=None, metavar="DIR", help="directory of query photos (default: the bundle's catalogue images)")
    p.add_argument("--repeats", type=positive_int, default=30, help="single-photo queries timed per stage (default: 30)")
    p.add_argument("--throughput-rounds", type=non_negative_int, default=2, metavar="N", help="rounds of 32 photos at each "
                   "batch size for the throughput table; 0 = latency only, no throughput; --compare always measures it (default: 2)")
    p.add_argument("--report", type=Path, default=None, metavar="DIR", help="also write bench.json and bench.md here (default: print only)")
    p.add_argument("--note", default="", help="a line recorded in the report, e.g. 'cores shared with other jobs' (default: none)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--compare", type=Path, default=None, metavar="REFERENCE", help="also bench this bundle (e.g. today's "
                   "configuration), interleaved with --bundle in one run, and report --bundle / REFERENCE for every figure (default: no comparison)")
    p.add_argument("--rounds", type=positive_int, default=2, help="interleaved rounds of --compare (default: 2)")
    p.add_argument("--reference-code", type=Path, default=None, metavar="CHECKOUT", help="bench --compare's bundle with "
                   "another shadematch version: the root of its checkout, e.g. `git worktree add ../old v0.1` (default: this code)")
    add_ocr_option(p)
    add_backend_options(p)
    p.set_defaults(handler=_bench)


def _bench(args: argparse.Namespace) -> int:
    from .tools.bench import BenchOptions, query_images, run_bench, to_markdown, write_report

    bundle = resolve_bundle(args.bundle)
    queries = query_images(args.queries) if args.queries is not None else None
    if args.compare is not None:
        return _bench_compare(args, bundle)
    options = BenchOptions(repeats=args.repeats, throughput_rounds=args.throughput_rounds, backend=args.backend,
                           threads=args.threads, note=args.note, ocr=ocr_choice(args))
    report = run_bench(bundle, queries, options)
    if args.report is not None:
        write_report(report, args.report)
    print(json.dumps(report, indent=2) if args.json else to_markdown(report))
    return 0


def _bench_compare(args: argparse.Namespace, bundle: Path) -> int:
    from .tools.compare import compare, to_markdown, write_comparison

    forwarded = ["--repeats", str(args.repeats)]
    for flag, value in (("--queries", args.queries), ("--ocr", args.ocr), ("--backend", args.backend),
                        ("--threads", args.threads)):
        if value is not None:
            forwarded += [flag, str(value)]
    summary = compare(args.compare, bundle, rounds=args.rounds, bench_args=forwarded,
                      reference_code=args.reference_code)
    if args.report is not None:
        write_comparison(summary, args.report)
    print(json.dumps(summary, indent=2) if args.json else to_markdown(summary))
    return 0


def _register_unavailable(commands: argparse._SubParsersAction, name: str, error: ImportError) -> None:
    # No option prefix: whatever options follow are taken as they are, and the handler explains.
    p = add_command(commands, name, group=NOT_INSTALLED, summary="", add_help=False, prefix_chars="\x01")
    p.add_argument("rest", nargs=argparse.REMAINDER)

    def unavailable(_: argparse.Namespace) -> int:
        raise ShadematchError(
            f"needs the offline stage: pip install 'shadematch[export]' ({error.name or error} is not installed)"
        )

    p.set_defaults(handler=unavailable)


if __name__ == "__main__":
    sys.exit(main())
