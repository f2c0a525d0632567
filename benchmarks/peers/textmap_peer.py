"""Text map: ours (export.bundle.textmap, chunked sparse top-N) vs scikit-learn's NearestNeighbors(metric="cosine",
algorithm="brute") on the same TF-IDF rows of the same titles, with the neighbour lists checked equal.

    python benchmarks/peers/textmap_peer.py --items 50000 [--max-df 0.01]
"""
from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

from common import catalogue, write
from export.bundle.textmap import TextMapParams, build_text_map, tfidf_matrix


def peer_lists(tfidf, params: TextMapParams) -> tuple[list[list[tuple[int, float]]], float]:
    from sklearn.neighbors import NearestNeighbors

    started = time.perf_counter()
    knn = NearestNeighbors(metric="cosine", algorithm="brute", n_jobs=params.threads).fit(tfidf)
    distances, ids = knn.kneighbors(tfidf, n_neighbors=min(params.top_n + 1, tfidf.shape[0]))
    lists = []
    for row in range(tfidf.shape[0]):
        keep = [(int(j), 1.0 - float(d)) for j, d in zip(ids[row], distances[row]) if j != row and 1.0 - d >= params.threshold - 1e-6]
        keep.sort(key=lambda pair: -pair[1])
        lists.append(keep[: params.top_n])
    return lists, time.perf_counter() - started


def compare(ours, peer: list[list[tuple[int, float]]], top_n: int, threshold: float) -> dict[str, int]:
    """Rows whose lists agree: the same neighbours with the same similarities (1e-5), leaving out only what
    float noise decides: titles tied (within 1e-5) with the last place of a full list, and titles within 1e-5
    of the threshold (the peer computes in float64, we in float32)."""
    same = differ = 0
    for row, theirs in enumerate(peer):
        mine = list(zip(ours.neighbours(row).tolist(), ours.similarities(row).tolist()))
        cut = max(theirs[-1][1] if len(theirs) == top_n else -1.0, threshold)
        clear_mine = [(j, s) for j, s in mine if s > cut + 1e-5]
        clear_theirs = [(j, s) for j, s in theirs if s > cut + 1e-5]
        ok = (len(clear_mine) == len(clear_theirs)
              and all(abs(a[1] - b[1]) <= 1e-5 for a, b in zip(clear_mine, clear_theirs))
              and {j for j, _ in clear_mine} == {j for j, _ in clear_theirs})
        same += ok
        differ += not ok
    return {"rows_equal": same, "rows_different": differ}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--max-df", type=float, default=0.01)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/shadematch-peers"))
    parser.add_argument("--skip-peer", action="store_true", help="time ours only (the peer is quadratic)")
    args = parser.parse_args()
    cat = catalogue(args.items, 1280, args.cache)
    with open(cat / "titles.csv", newline="", encoding="utf-8") as handle:
        titles = [row["title"] for row in csv.DictReader(handle)]
    params = TextMapParams(max_df=args.max_df, threads=args.threads)
    started = time.perf_counter()
    ours = build_text_map(titles, params)
    ours_s = time.perf_counter() - started
    started = time.perf_counter()
    tfidf = tfidf_matrix(titles, params)
    tfidf_s = time.perf_counter() - started
    report = {"items": len(titles), "params": params.to_dict(), "ours_s": ours_s, "tfidf_s": tfidf_s,
              "links": int(len(ours.indices)), "vocabulary": int(tfidf.shape[1])}
    table = [f"{len(titles)} synthetic titles (`export.synthetic.catalogs` grammar), TF-IDF vocabulary {tfidf.shape[1]} "
             f"(max_df {args.max_df}), top {params.top_n}, threshold {params.threshold}; both sides get the "
             f"same TF-IDF rows and {args.threads} threads; times include the TF-IDF fit ({tfidf_s:.1f} s).", "",
             "| method | seconds | speed-up | lists equal |", "|---|---:|---:|---|"]
    if args.skip_peer:
        table.append(f"| ours (export.bundle.textmap) | {ours_s:.1f} | | peer not run |")
    else:
        peer, peer_s = peer_lists(tfidf, params)
        agreement = compare(ours, peer, params.top_n, params.threshold)
        report.update(peer_s=peer_s + tfidf_s, speedup=(peer_s + tfidf_s) / ours_s, **agreement)
        table += [f"| ours (export.bundle.textmap) | {ours_s:.1f} | {(peer_s + tfidf_s) / ours_s:.1f}x | "
                  f"{agreement['rows_equal']} rows equal, {agreement['rows_different']} differ |",
                  f"| scikit-learn NearestNeighbors brute cosine | {peer_s + tfidf_s:.1f} | 1.0x | |"]
    write(f"textmap_peer_{len(titles) // 1000}k", report, table, own_threads=args.threads)


if __name__ == "__main__":
    main()
