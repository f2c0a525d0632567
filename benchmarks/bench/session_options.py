"""ONNX Runtime session options, measured rather than guessed: the visual model's latency at batch 1, photos/s of
two single-thread runs side by side (how `Retriever.query_batch` runs on the CPU), and the peak RSS of each
configuration, each in a process of its own, interleaved over rounds.

Usage: python benchmarks/bench/session_options.py --model engines/manet_lite0_int8.onnx [--rounds 2] [--out F.json]
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

#: name -> (intra-op threads, graph optimisation level, CPU memory arena, spinning, I/O binding)
CONFIGS = {
    "2 threads, all optimisations, arena, spinning (shipped)": (2, "all", True, True, False),
    "2 threads, no spinning": (2, "all", True, False, False),
    "2 threads, extended optimisations": (2, "extended", True, True, False),
    "2 threads, basic optimisations": (2, "basic", True, True, False),
    "2 threads, no memory arena": (2, "all", False, True, False),
    "2 threads, I/O binding": (2, "all", True, True, True),
    "1 thread": (1, "all", True, True, False),
}
RUNS = 40


def measure(model: Path, config: tuple) -> dict:
    import onnxruntime as ort

    threads, level, arena, spin, binding = config
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.graph_optimization_level = {"basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
                                        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
                                        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}[level]
    options.enable_cpu_mem_arena = arena
    if not spin:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    shape = [d if isinstance(d, int) else 1 for d in session.get_inputs()[0].shape]
    batch = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    if binding:
        bound = session.io_binding()
        bound.bind_cpu_input(name, batch)
        for output in session.get_outputs():
            bound.bind_output(output.name)
        run = lambda: session.run_with_iobinding(bound)  # noqa: E731
    else:
        run = lambda: session.run(None, {name: batch})  # noqa: E731
    for _ in range(5):
        run()
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    parallel = None
    if threads == 1:  # two photos at a time, one per core
        with ThreadPoolExecutor(2) as pool:
            started = time.perf_counter()
            list(pool.map(lambda _: session.run(None, {name: batch}), range(RUNS)))
            parallel = RUNS / (time.perf_counter() - started)
    return {"p50_ms": 1000 * statistics.median(times), "photos_per_s_two_runs": parallel,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, type=Path)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # internal: measure one configuration
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(measure(args.model, CONFIGS[args.one])))
        return 0
    results: dict[str, list[dict]] = {name: [] for name in CONFIGS}
    for _ in range(args.rounds):
        for name in CONFIGS:
            done = subprocess.run([sys.executable, __file__, "--model", str(args.model), "--one", name],
                                  check=True, capture_output=True, text=True)
            results[name].append(json.loads(done.stdout))
    summary = {"model": args.model.name, "rounds": args.rounds, "runs": RUNS, "rows": {}}
    print(f"{args.model.name}: visual model at batch 1, medians over {args.rounds} round(s)")
    print(f"{'configuration':58} {'p50 ms':>7} {'2 x 1 thread photos/s':>22} {'peak RSS MB':>12}")
    for name, runs in results.items():
        p50 = statistics.median(r["p50_ms"] for r in runs)
        parallel = runs[0]["photos_per_s_two_runs"] and statistics.median(r["photos_per_s_two_runs"] for r in runs)
        rss = max(r["peak_rss_mb"] for r in runs)
        summary["rows"][name] = {"p50_ms": p50, "photos_per_s_two_runs": parallel, "peak_rss_mb": rss}
        print(f"{name:58} {p50:7.2f} {parallel or float('nan'):22.1f} {rss:12.0f}")
    if args.out:
        args.out.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
