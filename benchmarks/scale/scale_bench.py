"""Large catalogues: build, load and query a bundle of a synthetic catalogue without the CNN.

    python benchmarks/scale/scale_bench.py --items 500000 --work /tmp/shadematch-scale-500k

Steps (each one reused when its output is already in --work, so an interrupted run continues):
1. `shadematch synth-catalog` (export.synthetic.catalogs: clusters type > line > product > image, grammar titles);
2. `shadematch build-vectors` in a child process: HNSW build, text-map build, bundle write, peak RSS;
3. bundle load in fresh processes: Retriever's `open_bundle(verify=True)` (full sha256) and sizes-only, per part;
4. query latency excluding the CNN (index search + refinement, one query at a time, the runtime's own functions)
   and recall@7 of the HNSW index against exact search, at the stored ef and a sweep.
Writes benchmarks/scale/scale_<N>k.json and .md.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "peers"))
from common import LOAD_AT_START, exact_top, load_note, queries_near, recall  # noqa: E402

from runtime.tools.bench import machine_description  # noqa: E402
from runtime.bundle import open_bundle  # noqa: E402
from runtime.search.two_stage import refine_batch  # noqa: E402

HERE = Path(__file__).resolve().parent
_LOAD = """
import json, sys, time
from runtime.bundle import open_bundle
parts = {}
started = time.perf_counter()
open_bundle(sys.argv[1], verify=sys.argv[2] == "1", timings=parts)
print(json.dumps({"total_s": time.perf_counter() - started, **parts}))
"""


def shadematch(*args: str) -> tuple[str, float]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "runtime.cli", *args], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"shadematch {args[0]} failed: {done.stderr.strip()}")
    return done.stdout, time.perf_counter() - started


def load_seconds(bundle: Path, verify: bool) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-c", _LOAD, str(bundle), "1" if verify else "0"],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=500_000)
    parser.add_argument("--dim", type=int, default=1280)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--M", type=int, default=24)
    parser.add_argument("--ef-construction", type=int, default=60)
    parser.add_argument("--ef", type=int, default=128)
    parser.add_argument("--sweep", type=int, nargs="+", default=[32, 64, 96, 128, 192])
    parser.add_argument("--text-max-df", type=float, default=0.01)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--reduce-dim", type=int, default=0, help="build with a PCA projection to this many dims (0 = off)")
    parser.add_argument("--note", default="", help="what else ran on the machine (the measured load average is always recorded)")
    args = parser.parse_args()
    work = args.work or Path(f"/tmp/shadematch-scale-{args.items // 1000}k")
    cat, bundle = work / "cat", work / "bundle"
    report: dict = {"items": args.items, "dim": args.dim, "machine": machine_description(),
                    "note": args.note, "load_average_at_start": list(LOAD_AT_START)}
    if not (cat / "synth.json").is_file():
        _, report["synth_s"] = shadematch("synth-catalog", "--items", str(args.items), "--dim", str(args.dim), "--out", str(cat))
    build_json = work / "build.json"
    if not build_json.is_file():
        command = ["build-vectors", "--vectors", str(cat / "vectors.npy"), "--titles", str(cat / "titles.csv"),
                   "--out", str(bundle), "--force", "--M", str(args.M), "--ef-construction", str(args.ef_construction),
                   "--ef", str(args.ef), "--text-max-df", str(args.text_max_df), "--threads", str(args.threads), "--reduce-dim", str(args.reduce_dim), "--json"]
        out, _ = shadematch(*command)
        build = json.loads(out)
        build["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
        build["command"] = "shadematch " + " ".join(command)
        build_json.write_text(json.dumps(build, indent=2) + "\n")
    report["build"] = json.loads(build_json.read_text())
    manifest = json.loads((bundle / "manifest.json").read_text())
    report["bundle_bytes"] = {name: entry["bytes"] for name, entry in manifest["files"].items()}
    report["text_map"] = manifest["text_map"]
    report["index"] = manifest["index"]
    report["load"] = {"verify": load_seconds(bundle, True), "sizes_only": load_seconds(bundle, False)}

    opened = open_bundle(bundle, verify=False)
    vectors = opened.index.vectors
    full_truth = None
    if opened.projection is None:
        queries = queries_near(vectors, args.queries, seed=1)
    else:
        # photos of catalogue products in the model's space, projected as the Retriever projects them; the
        # index is scored against exact search in its own space (the target), and also against the full space
        full = np.load(cat / "vectors.npy", mmap_mode="r")
        full_queries = queries_near(full, args.queries, seed=1)
        queries = opened.projection.apply(full_queries)
        full_truth = exact_top(full, full_queries)
    truth = exact_top(vectors, queries)
    k, top = opened.k, opened.top
    search_ms, refine_ms, found = [], [], []
    for q in queries:
        q = q[None]
        started = time.perf_counter()
        ids, scores = opened.index.search(q, max(top, k))
        middle = time.perf_counter()
        refine_batch(q, ids, scores, opened.index, opened.text_map, k, top)
        search_ms.append((middle - started) * 1000)
        refine_ms.append((time.perf_counter() - middle) * 1000)
        found.append(ids[:, :7])
    total = np.add(search_ms, refine_ms)
    report["query"] = {
        "ef": args.ef, "queries": args.queries, "recall7": recall(np.concatenate(found), truth),
        **{f"{name}_{p}_ms": float(np.percentile(values, int(p[1:]))) for name, values in
           (("search", search_ms), ("refine", refine_ms), ("total", total)) for p in ("p50", "p95", "p99")},
    }
    if full_truth is not None:
        report["query"]["recall7_vs_full_dim_exact"] = recall(np.concatenate(found), full_truth)
    sweep = []
    hnsw = opened.index._hnsw
    for ef in args.sweep:
        hnsw.set_ef(ef)
        ids, times = [], []
        for q in queries:
            started = time.perf_counter()
            ids.append(hnsw.knn_query(q[None], k=7, num_threads=1)[0])
            times.append(time.perf_counter() - started)
        sweep.append({"ef": ef, "recall7": recall(np.concatenate(ids), truth), "p50_ms": 1000 * float(np.median(times))})
    report["sweep"] = sweep
    report["load_note"] = load_note(LOAD_AT_START, os.getloadavg(), args.threads)
    name = f"scale_{args.items // 1000}k_M{report['index']['M']}_efC{report['index']['ef_construction']}"
    if args.reduce_dim:
        name += f"_pca{args.reduce_dim}"
        report["projection"] = manifest["descriptor"]["projection"]
    (HERE / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    (HERE / f"{name}.md").write_text(markdown(report))
    print(markdown(report))


def markdown(r: dict) -> str:
    b, q, m = r["build"], r["query"], r["machine"]
    gib = sum(r["bundle_bytes"].values()) / 1024**3
    lines = [f"# {r['items']} items x {r['dim']}-d (synthetic catalogue), 2 cores", "",
             f"Machine: {m['cpu']}, {m['cores_usable']} cores, {m['ram_gib']} GiB. Load: {r.get('load_note', '')} {r['note']}", "",
             f"Build command: `{b.get('command', '?')}`", "",
             "| step | measured |", "|---|---:|",
             *([f"| PCA fit (sample of {r['projection']['fit_rows']} rows) + projection of every row to "
                f"{r['projection']['out_dim']} dims | {b['projection_s']:.0f} s |"] if "projection" in r else []),
             f"| HNSW build (M={r['index']['M']}, ef_construction={r['index']['ef_construction']}, 2 threads) | {b['index_s']:.0f} s |",
             f"| text-map build (TF-IDF + chunked top-{r['text_map']['top_n']}, max_df {r['text_map'].get('max_df')}) | {b['text_map_s']:.1f} s |",
             f"| bundle write (incl. sha256 of every file) | {b['write_s']:.0f} s |",
             f"| build peak RSS | {b.get('peak_rss_mib', float('nan')):.0f} MiB |",
             *([f"| build CPU seconds (all steps) / CPU share the build got | {b['process_cpu_s']:.0f} s / "
                f"{b['cpu_share_of_one_core']:.0%} of one core |"] if "process_cpu_s" in b else []),
             *([f"| HNSW / text-map CPU seconds | {b['index_cpu_s']:.0f} s / {b['text_map_cpu_s']:.0f} s |"]
               if "index_cpu_s" in b else []),
             f"| bundle size | {gib:.2f} GiB ({', '.join(f'{k} {v / 1024**2:.0f} MiB' for k, v in r['bundle_bytes'].items() if v > 2**20)}) |",
             f"| load, sizes only (fresh process) | {r['load']['sizes_only']['total_s']:.2f} s |",
             f"| load, full sha256 verify (Retriever.open default) | {r['load']['verify']['total_s']:.2f} s |",
             f"| index search p50 / p99 (ef={q['ef']}) | {q['search_p50_ms']:.2f} / {q['search_p99_ms']:.2f} ms |",
             f"| refinement p50 / p99 | {q['refine_p50_ms']:.2f} / {q['refine_p99_ms']:.2f} ms |",
             f"| index + refinement p50 / p95 / p99 | {q['total_p50_ms']:.2f} / {q['total_p95_ms']:.2f} / {q['total_p99_ms']:.2f} ms |",
             f"| recall@7 of the index vs exact (ef={q['ef']}) | {q['recall7']:.4f} |",
             *([f"| recall@7 vs exact search of the full {r['dim']}-d descriptors (PCA {r['projection']['out_dim']} dims, "
                f"{r['projection']['variance_kept']:.0%} of the variance kept) | {q['recall7_vs_full_dim_exact']:.4f} |"]
               if "recall7_vs_full_dim_exact" in q else []), "",
             "Load parts (seconds): " + "; ".join(f"{kind}: " + ", ".join(f"{k.removesuffix('_s')} {v:.2f}" for k, v in parts.items())
                                                   for kind, parts in r["load"].items()), "",
             "| ef | recall@7 | search p50 ms |", "|---:|---:|---:|",
             *(f"| {s['ef']} | {s['recall7']:.4f} | {s['p50_ms']:.2f} |" for s in r["sweep"]), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
