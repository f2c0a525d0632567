"""How many photos/s can a batch reach on this machine, at best, against batch 1?

A batch can only beat single-photo queries by using cores that batch 1 leaves idle. This measures, in one process
and interleaved over rounds (the machine's speed drifts by 20% within minutes), on the same photos:

- ``batch 1``: whole queries (decode, preprocess, visual model, SR-MAC, search), one photo per call;
- ``batch 32``: the same photos in one `Retriever.query_batch` call;
- ``model alone, photo by photo``: the visual model at batch 1 on the bundle's own session (all threads, spinning);
- ``model alone, one run of 32``: the visual model on all 32 photos in one call;
- ``model alone, 1 thread x 2``: two single-thread runs side by side (how `query_batch` runs the model).

Every batch still has to decode, preprocess and pool each photo, so it cannot exceed the fastest of the
model-alone rates: that rate over batch 1 is a ceiling of "batch 32 / batch 1" for this model on this machine.

Usage: python benchmarks/bench/batch_ceiling.py --bundle B [--queries DIR] [--rounds 7] [--threads 2] [--out F.json]
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np

from runtime.backends import open_backend
from runtime.retriever import Retriever

BATCH = 32
MODEL_ALONE = ("model alone, photo by photo", "model alone, one run of 32", "model alone, 1 thread x 2")
FIGURES = ("batch 1", "batch 32", *MODEL_ALONE)


def photos_per_s(work: Callable[[], None], photos: int) -> float:
    started = time.perf_counter()
    work()
    return photos / (time.perf_counter() - started)


def measure(bundle: Path, queries: Path, rounds: int, threads: int) -> dict:
    retriever = Retriever.open(bundle, backend="onnxruntime", threads=threads, ocr=False)
    images = sorted(p for p in queries.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    feed = [images[i % len(images)] for i in range(BATCH)]
    embedder = retriever.embedder
    inputs = np.stack([embedder.prepare(p) for p in feed])
    name = embedder.card.input.name
    single = open_backend(retriever.bundle.model_path, "onnxruntime", threads=1, spin=False)

    def model_two_single_thread_runs() -> None:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda i: single.run({name: inputs[i:i + 1]}), range(BATCH)))

    work = {
        "batch 1": lambda: [retriever.query_batch([p]) for p in feed],
        "batch 32": lambda: retriever.query_batch(feed, batch_size=BATCH),
        "model alone, photo by photo": lambda: [retriever.backend.run({name: inputs[i:i + 1]}) for i in range(BATCH)],
        "model alone, one run of 32": lambda: retriever.backend.run({name: inputs}),
        "model alone, 1 thread x 2": model_two_single_thread_runs,
    }
    for run in work.values():  # warm-up: sessions, arenas, worker threads
        run()
    samples: dict[str, list[float]] = {figure: [] for figure in FIGURES}
    for _ in range(rounds):
        for figure in FIGURES:
            samples[figure].append(photos_per_s(work[figure], BATCH))
    single.close()
    retriever.close()
    ratio = lambda a, b: statistics.median(x / y for x, y in zip(samples[a], samples[b]))  # noqa: E731
    ceiling = [max(samples[figure][i] for figure in MODEL_ALONE) / samples["batch 1"][i] for i in range(rounds)]
    return {
        "bundle": str(bundle), "model": retriever.bundle.card.name, "threads": threads, "rounds": rounds,
        "photos": BATCH, "machine": f"{platform.processor() or platform.machine()}, {threads} thread(s)",
        "photos_per_s": {figure: round(statistics.median(values), 1) for figure, values in samples.items()},
        "batch32_over_batch1": round(ratio("batch 32", "batch 1"), 2),
        "ceiling_over_batch1": round(statistics.median(ceiling), 2),
        "samples": {figure: [round(v, 1) for v in values] for figure, values in samples.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, action="append", required=True, help="repeat to measure several")
    parser.add_argument("--queries", type=Path, default=Path("export/demo/images"))
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    results = [measure(bundle, args.queries, args.rounds, args.threads) for bundle in args.bundle]
    for result in results:
        print(f"{result['model']}: " + ", ".join(f"{k} {v}" for k, v in result["photos_per_s"].items())
              + f"; batch 32 / batch 1 {result['batch32_over_batch1']}, ceiling {result['ceiling_over_batch1']}")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
