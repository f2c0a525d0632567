"""TensorRT vs ONNX Runtime (CPU) vs PyTorch eager for the default visual model, on a GPU machine.

Measures, per TensorRT precision (fp32, fp16, int8):
- cosine similarity of the final SR-MAC descriptors of the query photos, TensorRT vs ONNX Runtime CPU;
- mAP@7 (visual and two-stage) of the same bundle (gallery indexed on the CPU, as a kiosk bundle is)
  with queries run through TensorRT, against ONNX Runtime CPU;
- batch-1 latency (p50 / p95 ms, host to host: copies included) and batch-64 throughput (images/s) of the
  model, against ONNX Runtime CPU and PyTorch eager (CUDA, and CPU).

    python benchmarks/gpu/bench_tensorrt.py --out benchmarks/gpu/results.json              # demo catalogue
    python benchmarks/gpu/bench_tensorrt.py --catalog OUT/instore_catalog.csv --queries OUT/val_queries.csv \\
        --out benchmarks/gpu/results_instore.json    # Grocery in-store protocol (benchmarks/grocery/prepare.py)

Needs a CUDA GPU, pycuda, TensorRT (`gpu` extra) or TensorRT for RTX (`rtx` extra; RTX GPUs), and the
`export` extra (engine build, bundle, PyTorch).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from export.bundle.build import DEFAULT_MODEL, BuildOptions, build_bundle  # noqa: E402
from export.engine.build import EngineBuildOptions, build_engine  # noqa: E402
from runtime.backends import open_backend  # noqa: E402
from runtime.backends.tensorrt import TensorRTBackend  # noqa: E402
from runtime.bundle import open_bundle  # noqa: E402
from runtime.engines.device import cuda_device  # noqa: E402
from runtime.engines.library import import_tensorrt  # noqa: E402
from runtime.tools.evaluate import evaluate, read_queries  # noqa: E402
from runtime.describe.image import load_and_prepare  # noqa: E402
from runtime.describe.modelcard import ModelCard, card_path_for  # noqa: E402
from runtime.retriever import Retriever  # noqa: E402

DEMO = ROOT / "export" / "demo"


def timed(run: Callable[[], object], rounds: int, warmup: int = 5) -> list[float]:
    for _ in range(warmup):  # first runs allocate, pick or compile kernels (RTX: JIT)
        run()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return times


def speed(run_batch: Callable[[np.ndarray], object], batch1: np.ndarray, batch64: np.ndarray, rounds: int) -> dict:
    one = timed(lambda: run_batch(batch1), rounds)
    many = timed(lambda: run_batch(batch64), max(5, rounds // 10))
    return {"batch1_p50_ms": round(1e3 * float(np.median(one)), 3), "batch1_p95_ms": round(1e3 * float(np.percentile(one, 95)), 3),
            "batch64_images_per_s": round(len(batch64) / float(np.median(many)), 1)}


def torch_eager(device: str) -> Callable[[np.ndarray], object] | None:
    """The PyTorch model the shipped ONNX was exported from (ImageNet EfficientNet-Lite0 trunk)."""
    import torch

    from export.models.efficientnet_lite import VisualTrunk, load_imagenet_lite0

    if device == "cuda" and not torch.cuda.is_available():
        return None
    model = VisualTrunk(load_imagenet_lite0()).eval().to(device)

    def run(batch: np.ndarray) -> object:
        with torch.inference_mode():
            x, s = model(torch.from_numpy(batch).to(device))
            return x.cpu().numpy(), s.cpu().numpy()  # host to host, as the other backends

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--catalog", type=Path, default=DEMO / "catalog.csv")
    parser.add_argument("--queries", type=Path, default=DEMO / "queries.csv")
    parser.add_argument("--flavor", choices=("tensorrt", "rtx"), default=None, help="default: the first installed")
    parser.add_argument("--precisions", nargs="+", default=["fp32", "fp16", "int8"])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--cpu-threads", type=int, default=os.cpu_count())
    parser.add_argument("--work", type=Path, default=None, help="where plans and the bundle go (default: a temporary folder)")
    parser.add_argument("--out", type=Path, required=True, help="results JSON")
    args = parser.parse_args()

    library = import_tensorrt(args.flavor)
    device = cuda_device(library)
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-trt-"))
    card = ModelCard.load(card_path_for(DEFAULT_MODEL))
    targets = (device.compute_capability,) if library.targets_compute_capabilities else ()
    plans = {}
    for precision in args.precisions:
        report = build_engine(DEFAULT_MODEL, work / "engines", EngineBuildOptions(
            flavor=library.flavor, precision=precision, max_batch=64, compute_capabilities=targets,
            calibration_catalog=args.catalog))
        plans[precision] = (report.plan, round(report.seconds, 1))
    bundle_path = work / "bundle"
    build_bundle(args.catalog, bundle_path, BuildOptions(backend="onnxruntime", threads=args.cpu_threads, progress=False, overwrite=True))
    bundle = open_bundle(bundle_path)
    queries = read_queries(args.queries)
    photos = [q.image for q in queries]

    prepared = np.stack([load_and_prepare(p, card.input) for p in photos[:64]])
    batch64 = np.resize(prepared, (64, *prepared.shape[1:])).astype(np.float32)
    batch1 = batch64[:1].copy()

    results: dict = {"device": device.name, "compute_capability": device.compute_capability,
                     "library": f"{library.name} {library.version}", "model": card.name,
                     "catalog": str(args.catalog), "queries": len(queries), "host": platform.processor() or platform.machine(),
                     "cpu_threads": args.cpu_threads, "backends": {}}
    cpu = Retriever(bundle, open_backend(bundle.model_path, "onnxruntime", threads=args.cpu_threads))
    reference = cpu.embed(photos)
    cpu_eval = evaluate(cpu, queries)
    results["backends"]["onnxruntime-cpu"] = {
        "map7": cpu_eval["map7"], "map7_visual": cpu_eval["map7_visual"], "top1": cpu_eval["top1"],
        **speed(lambda b: cpu.backend.run({card.input.name: b}), batch1, batch64, max(20, args.rounds // 10)),
    }
    for precision, (plan, build_s) in plans.items():
        with TensorRTBackend(plan) as backend:
            retriever = Retriever(bundle, backend)
            cosine = (retriever.embed(photos) * reference).sum(axis=1)
            scores = evaluate(retriever, queries)
            results["backends"][f"tensorrt-{precision}"] = {
                "plan": plan.name, "build_s": build_s,
                "cosine_vs_onnxruntime": {"mean": round(float(cosine.mean()), 5), "min": round(float(cosine.min()), 5)},
                "map7": scores["map7"], "map7_visual": scores["map7_visual"], "top1": scores["top1"],
                "map7_change": round(scores["map7"] - cpu_eval["map7"], 4),
                **speed(lambda b: backend.run({card.input.name: b}), batch1, batch64, args.rounds),
            }
    for name, device_name in (("pytorch-eager-cuda", "cuda"), ("pytorch-eager-cpu", "cpu")):
        run = torch_eager(device_name)
        if run is not None:
            rounds = args.rounds if device_name == "cuda" else max(20, args.rounds // 10)
            results["backends"][name] = speed(run, batch1, batch64, rounds)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"{results['device']} (compute capability {results['compute_capability']}), {results['library']}")
    print("| backend | cosine mean / min | mAP@7 (change) | batch-1 p50 ms | batch-64 images/s |")
    print("|---|---|---|---|---|")
    for name, row in results["backends"].items():
        cos = row.get("cosine_vs_onnxruntime")
        cos_text = f"{cos['mean']:.4f} / {cos['min']:.4f}" if cos else "-"
        map_text = f"{row['map7']:.4f} ({row.get('map7_change', 0):+.4f})" if "map7" in row else "-"
        print(f"| {name} | {cos_text} | {map_text} | {row['batch1_p50_ms']} | {row['batch64_images_per_s']} |")


if __name__ == "__main__":
    main()
