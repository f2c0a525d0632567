"""Models: ONNX Runtime CPU (what the kiosk runs) vs PyTorch eager CPU (the model's source), batch 1 and 16,
the same threads for both.

- visual: engines/efficientnet_lite0_imagenet.onnx vs export.models VisualTrunk (the same ImageNet weights);
- MANet:  engines/manet_lite0.onnx (the default visual model: backbone + saliency + EAST text branch) vs
  export.models.manet InferenceGraph of the same architecture (ImageNet-initialised: the trained checkpoint
  is not shipped; latency depends on the graph, not on weight values);
- text:   engines/east_lite0.onnx vs export.models.east EAST (same architecture; the trained checkpoint is not
  shipped, so PyTorch runs ImageNet-initialised weights: latency depends on the graph, not on weight values).

    python benchmarks/peers/model_peers.py [--threads 2] [--repeats 10]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from common import ROOT, write

ENGINES = ROOT / "engines"


def latency_ms(run, batch: np.ndarray, repeats: int) -> dict[str, float]:
    run(batch)  # warm-up: allocations, kernel choice
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run(batch)
        times.append(time.perf_counter() - started)
    ms = np.asarray(times) * 1000.0
    return {"p50_ms": float(np.median(ms)), "mean_ms": float(ms.mean()), "images_per_s": len(batch) / float(np.median(ms) / 1000.0)}


def ort_runner(model: Path, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    return lambda x: session.run(None, {"image": x})


def torch_runner(module):
    import torch

    module.eval()

    def run(x: np.ndarray):
        with torch.inference_mode():
            return module(torch.from_numpy(x))

    return run


ENGINES_RUN = ("ONNX Runtime CPU", "PyTorch eager CPU")


def measure(engine: str, threads: int, repeats: int, batches: list[int]) -> list[dict]:
    """One engine, both models. Runs in a process of its own: ONNX Runtime's and PyTorch's thread pools
    spin while idle, and two of them in one process on 2 cores slow each other down several-fold."""
    import torch

    torch.set_num_threads(threads)
    from export.models.east import build_east
    from export.models.efficientnet_lite import VisualTrunk, load_imagenet_lite0
    from export.models.manet import MANet, InferenceGraph

    models = {
        "visual (EfficientNet-Lite0 trunk, 320 px)": (ENGINES / "efficientnet_lite0_imagenet.onnx",
                                                      lambda: VisualTrunk(load_imagenet_lite0()), 320),
        "text (EAST-Lite0, 384 px)": (ENGINES / "east_lite0.onnx", lambda: build_east(pretrained=True), 384),
        "visual (MANet-Lite0 with text branch, 320 px)": (
            ENGINES / "manet_lite0.onnx", lambda: InferenceGraph(MANet(81, east=build_east(pretrained=True))), 320),
    }
    rng = np.random.default_rng(0)
    rows = []
    for name, (onnx_path, make_module, size) in models.items():
        run = ort_runner(onnx_path, threads) if engine == ENGINES_RUN[0] else torch_runner(make_module())
        for batch in batches:
            x = rng.standard_normal((batch, 3, size, size), dtype=np.float32)
            rows.append({"model": name, "engine": engine, "batch": batch, **latency_ms(run, x, repeats)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--engine", choices=ENGINES_RUN, default=None, help=argparse.SUPPRESS)  # child process
    args = parser.parse_args()
    if args.engine is not None:
        print(json.dumps(measure(args.engine, args.threads, args.repeats, args.batches)))
        return
    rows = []
    for engine in ENGINES_RUN:
        done = subprocess.run([sys.executable, __file__, "--engine", engine, "--threads", str(args.threads),
                               "--repeats", str(args.repeats), "--batches", *map(str, args.batches)],
                              capture_output=True, text=True, check=True)
        rows += json.loads(done.stdout.strip().splitlines()[-1])
    rows.sort(key=lambda r: (r["model"], r["batch"], r["engine"]))
    import torch

    table = [f"{args.threads} threads for both engines, each engine in a process of its own, {args.repeats} timed "
             f"runs after a warm-up; torch {torch.__version__}.", "",
             "| model | engine | batch | p50 ms | images/s |", "|---|---|---:|---:|---:|"]
    table += [f"| {r['model']} | {r['engine']} | {r['batch']} | {r['p50_ms']:.1f} | {r['images_per_s']:.1f} |" for r in rows]
    write("model_peers", {"threads": args.threads, "repeats": args.repeats, "rows": rows}, table, own_threads=args.threads)


if __name__ == "__main__":
    main()
