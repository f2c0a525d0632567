"""Two bundles benchmarked side by side in one run: `shadematch bench` on each, alternating A B A B (each in its own
process, so peak RSS is each one's own), then the ratios of the medians. The machine is shared and noisy; ratios
measured in one interleaved run are what a report may compare.

Usage: python benchmarks/bench/side_by_side.py --a BUNDLE --b BUNDLE [--queries DIR] [--rounds 2] [--out F.json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

KEYS = (("total", "p50_ms"), ("total", "p95_ms"), ("visual_model", "p50_ms"), ("srmac", "p50_ms"),
        ("index_search", "p50_ms"), ("refinement", "p50_ms"))


def bench(bundle: Path, queries: Path | None, threads: int) -> dict:
    command = [sys.executable, "-m", "runtime.cli", "bench", "--bundle", str(bundle), "--json", "--threads", str(threads)]
    if queries is not None:
        command += ["--queries", str(queries)]
    return json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)


def value(report: dict, stage: str, key: str) -> float:
    part = report[stage] if stage == "total" else report["stages"][stage]
    return float(part[key])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", required=True, type=Path, help="the reference bundle (today's configuration)")
    parser.add_argument("--b", required=True, type=Path, help="the bundle compared with it")
    parser.add_argument("--queries", type=Path, default=None, help="folder of query photos (default: bench's own)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="write the summary as JSON here")
    args = parser.parse_args()
    runs: dict[str, list[dict]] = {"a": [], "b": []}
    for _ in range(args.rounds):
        for name in ("a", "b"):
            runs[name].append(bench(getattr(args, name), args.queries, args.threads))
    summary = {"a": str(args.a), "b": str(args.b), "rounds": args.rounds, "threads": args.threads, "rows": {}}
    print(f"{'measure':28} {'A':>9} {'B':>9} {'B / A':>7}")
    for stage, key in KEYS:
        a = statistics.median(value(r, stage, key) for r in runs["a"])
        b = statistics.median(value(r, stage, key) for r in runs["b"])
        summary["rows"][f"{stage}.{key}"] = {"a": a, "b": b, "ratio": b / a}
        print(f"{stage + ' ' + key:28} {a:9.2f} {b:9.2f} {b / a:7.2f}")
    for batch in ("1", "8", "32"):
        a = statistics.median(r["throughput"][batch]["images_per_s"] for r in runs["a"])
        b = statistics.median(r["throughput"][batch]["images_per_s"] for r in runs["b"])
        summary["rows"][f"photos_per_s.batch{batch}"] = {"a": a, "b": b, "ratio": b / a}
        print(f"{'photos/s batch ' + batch:28} {a:9.1f} {b:9.1f} {b / a:7.2f}")
    a = max(r["peak_rss_mb"] for r in runs["a"])
    b = max(r["peak_rss_mb"] for r in runs["b"])
    summary["rows"]["peak_rss_mb"] = {"a": a, "b": b, "ratio": b / a}
    print(f"{'peak RSS MB':28} {a:9.0f} {b:9.0f} {b / a:7.2f}")
    summary["machine"] = runs["a"][0]["machine"]
    if args.out:
        args.out.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
