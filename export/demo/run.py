"""`shadematch demo`: build a bundle from the shipped demo catalogue and query it with the shipped photos."""
from __future__ import annotations

import shlex
from pathlib import Path

from runtime.results import result_dict
from runtime.tools.evaluate import evaluate, read_queries
from runtime.tools.plain import print_results
from runtime.retriever import Retriever

from ..bundle.build import BuildOptions, build_bundle

DEMO_DIR = Path(__file__).resolve().parent  # the shipped demo catalogue lies beside this module
DEMO_CATALOG = DEMO_DIR / "catalog.csv"
DEMO_QUERIES = DEMO_DIR / "queries.csv"


def run_demo(out: Path, backend: str = "auto", threads: int | None = None, progress: bool = True) -> dict:
    """Build the demo bundle at ``out`` (replacing an earlier one), query it, print the matches."""
    report = build_bundle(
        DEMO_CATALOG, out, BuildOptions(backend=backend, threads=threads, overwrite=True, progress=progress)
    )
    print(f"built {report.out} ({report.items} catalogue items) in {report.seconds:.1f} s")
    queries = read_queries(DEMO_QUERIES)
    with Retriever.open(out, backend=backend, threads=threads) as retriever:
        answers = retriever.answer([q.image for q in queries])
        # the same output as `shadematch query`, each photo named with the product it shows
        print_results([result_dict(answer, f"{query.image.name} (shows {query.group})")
                       for query, answer in zip(queries, answers)], retriever.threshold)
        summary = evaluate(retriever, queries)
    without = summary.get("ocr_off", {})
    print(
        f"\n{summary['queries']} queries: top-1 {summary['top1']:.2f}, mAP@7 two-stage {summary['map7']:.3f} "
        f"(visual only {summary['map7_visual']:.3f}"
        + (f"; without reading the labels: top-1 {without['top1']:.2f}, mAP@7 {without['map7']:.3f}" if without else "")
        + ")"
    )
    bundle, photo = _shown(out), _shown(queries[0].image)
    print(f"\nDemo photos: {_shown(queries[0].image.parent)} (the *_query.jpg files; the others are the catalogue)")
    print(f"Try: shadematch query --bundle {bundle} {photo}")
    print(f"Open the kiosk: shadematch kiosk --bundle {bundle}, then http://127.0.0.1:8080")
    return summary


def _shown(path: Path) -> str:
    """``path`` as a shell word: relative to the working directory when it lies below it, else absolute."""
    path = Path(path).resolve()
    try:
        path = path.relative_to(Path.cwd())
    except ValueError:
        pass
    return shlex.quote(str(path))
