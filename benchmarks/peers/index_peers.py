"""Index peers side by side: hnswlib (ours) vs faiss (flat and HNSW) vs usearch, same vectors, same queries,
one run: recall@7 against exact search, queries per second (one thread, one query at a time, as a kiosk
asks), build time (2 threads) and memory (RSS growth over the build).

    python benchmarks/peers/index_peers.py --items 100000 [--libs hnswlib,faiss-flat,faiss-hnsw,usearch]
"""
from __future__ import annotations

import argparse
import gc
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from common import TOP, catalogue, exact_top, queries_near, recall, rss_mib, write


def timed_queries(search: Callable[[np.ndarray], np.ndarray], queries: np.ndarray) -> tuple[np.ndarray, float, float]:
    """(ids, queries per second, p50 ms) asking one query at a time."""
    search(queries[:1])
    ids, times = [], []
    for q in queries:
        started = time.perf_counter()
        ids.append(search(q[None]))
        times.append(time.perf_counter() - started)
    return np.concatenate(ids), 1.0 / float(np.mean(times)), 1000.0 * float(np.median(times))


def run_hnswlib(vectors, queries, truth, args) -> list[dict[str, Any]]:
    import hnswlib

    index = hnswlib.Index(space="ip", dim=vectors.shape[1])
    index.init_index(max_elements=len(vectors), M=args.M, ef_construction=args.ef_construction, random_seed=100)
    build = _build(lambda: index.add_items(vectors, num_threads=args.threads))
    rows = []
    for ef in args.ef:
        index.set_ef(ef)
        ids, qps, p50 = timed_queries(lambda q: index.knn_query(q, k=TOP, num_threads=1)[0], queries)
        rows.append({"lib": "hnswlib", "kind": f"HNSW M={args.M} efC={args.ef_construction}", "ef": ef,
                     "recall7": recall(ids, truth), "qps": qps, "p50_ms": p50, **build})
    return rows


def run_faiss_flat(vectors, queries, truth, args) -> list[dict[str, Any]]:
    import faiss

    faiss.omp_set_num_threads(args.threads)
    index = faiss.IndexFlatIP(vectors.shape[1])
    build = _build(lambda: index.add(vectors))
    faiss.omp_set_num_threads(1)
    ids, qps, p50 = timed_queries(lambda q: index.search(q, TOP)[1], queries)
    return [{"lib": "faiss", "kind": "Flat (exact)", "ef": None, "recall7": recall(ids, truth), "qps": qps, "p50_ms": p50, **build}]


def run_faiss_hnsw(vectors, queries, truth, args) -> list[dict[str, Any]]:
    import faiss

    faiss.omp_set_num_threads(args.threads)
    index = faiss.IndexHNSWFlat(vectors.shape[1], args.M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = args.ef_construction
    build = _build(lambda: index.add(vectors))
    faiss.omp_set_num_threads(1)
    rows = []
    for ef in args.ef:
        index.hnsw.efSearch = ef
        ids, qps, p50 = timed_queries(lambda q: index.search(q, TOP)[1], queries)
        rows.append({"lib": "faiss", "kind": f"HNSWFlat M={args.M} efC={args.ef_construction}", "ef": ef,
                     "recall7": recall(ids, truth), "qps": qps, "p50_ms": p50, **build})
    return rows


def run_usearch(vectors, queries, truth, args) -> list[dict[str, Any]]:
    from usearch.index import Index

    index = Index(ndim=vectors.shape[1], metric="ip", dtype="f32", connectivity=args.M,
                  expansion_add=args.ef_construction)
    build = _build(lambda: index.add(np.arange(len(vectors)), vectors, threads=args.threads))
    rows = []
    for ef in args.ef:
        index.expansion_search = ef
        ids, qps, p50 = timed_queries(lambda q: index.search(q, TOP, threads=1).keys.reshape(1, -1), queries)
        rows.append({"lib": "usearch", "kind": f"HNSW M={args.M} efC={args.ef_construction}", "ef": ef,
                     "recall7": recall(ids, truth), "qps": qps, "p50_ms": p50, **build})
    return rows


def _build(add: Callable[[], Any]) -> dict[str, float]:
    gc.collect()
    before = rss_mib()
    started = time.perf_counter()
    add()
    return {"build_s": time.perf_counter() - started, "memory_mib": rss_mib() - before}


RUNNERS = {"hnswlib": run_hnswlib, "faiss-flat": run_faiss_flat, "faiss-hnsw": run_faiss_hnsw, "usearch": run_usearch}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=1280)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--M", type=int, default=24)
    parser.add_argument("--ef-construction", type=int, default=60)
    parser.add_argument("--ef", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--libs", default=",".join(RUNNERS))
    parser.add_argument("--cache", type=Path, default=Path("/tmp/shadematch-peers"))
    args = parser.parse_args()
    cat = catalogue(args.items, args.dim, args.cache)
    vectors = np.ascontiguousarray(np.load(cat / "vectors.npy"))
    queries = queries_near(vectors, args.queries)
    truth = exact_top(vectors, queries)
    rows = []
    for name in args.libs.split(","):
        rows += RUNNERS[name](vectors, queries, truth, args)
        gc.collect()
    table = [f"{args.items} x {args.dim} vectors (synthetic, `export.synthetic.catalogs`), {args.queries} queries (catalogue rows "
             "+ image noise); recall@7 vs exact inner product; queries one at a time on 1 thread; build on "
             f"{args.threads} threads; memory = RSS growth over the build.", "",
             "| library | index | ef | recall@7 | queries/s | p50 ms | build s | memory MiB |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    table += [f"| {r['lib']} | {r['kind']} | {r['ef'] or '-'} | {r['recall7']:.4f} | {r['qps']:.0f} | {r['p50_ms']:.2f} | "
              f"{r['build_s']:.1f} | {r['memory_mib']:.0f} |" for r in rows]
    dims = "" if args.dim == 1280 else f"_{args.dim}d"  # 1280-d: the SR-MAC descriptor, the reports' default
    write(f"index_peers_{args.items // 1000}k{dims}_M{args.M}_efC{args.ef_construction}", {"items": args.items, "dim": args.dim, "queries": args.queries, "rows": rows}, table, own_threads=args.threads)


if __name__ == "__main__":
    main()
