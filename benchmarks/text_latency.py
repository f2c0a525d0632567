"""CPU latency of the shipped EAST ONNX model (ONNX Runtime, batch 1) at 320x320 and 512x512.

Writes benchmarks/text_latency.json and .md. Sizes are measured interleaved, round by round, so a noisy
shared machine slows them alike and the ratio stays meaningful.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from runtime.backends import open_backend
from runtime.reading.detector import DEFAULT_TEXT_MODEL

SIZES = (320, 512)


def measure(model: Path, threads: int, rounds: int) -> dict:
    backend = open_backend(model, "onnxruntime", threads=threads)
    inputs = {s: np.random.default_rng(s).uniform(-1, 1, (1, 3, s, s)).astype(np.float32) for s in SIZES}
    for s in SIZES:  # warm-up: first runs allocate and pick kernels
        for _ in range(3):
            backend.run({"image": inputs[s]})
    times: dict[int, list[float]] = {s: [] for s in SIZES}
    for _ in range(rounds):
        for s in SIZES:
            start = time.perf_counter()
            backend.run({"image": inputs[s]})
            times[s].append(1e3 * (time.perf_counter() - start))
    return {str(s): {"p50_ms": round(float(np.median(t)), 2), "p95_ms": round(float(np.percentile(t, 95)), 2),
                     "min_ms": round(float(np.min(t)), 2)} for s, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, default=DEFAULT_TEXT_MODEL)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "text_latency")
    args = parser.parse_args()
    report = {
        "model": args.model.name, "onnxruntime": ort.__version__, "threads": args.threads, "batch": 1,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.processor() or platform.platform()}",
        "latency": measure(args.model, args.threads, args.rounds),
    }
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    rows = "\n".join(f"| {s}x{s} | {v['p50_ms']} | {v['p95_ms']} | {v['min_ms']} |" for s, v in report["latency"].items())
    args.out.with_suffix(".md").write_text(
        f"# EAST text detector latency (CPU)\n\n{report['model']}, ONNX Runtime {report['onnxruntime']}, "
        f"{args.threads} threads, batch 1, {args.rounds} interleaved rounds; {report['machine']}.\n\n"
        f"| input | p50 ms | p95 ms | min ms |\n|---|---|---|---|\n{rows}\n"
    )
    print(json.dumps(report["latency"]))


if __name__ == "__main__":
    main()
