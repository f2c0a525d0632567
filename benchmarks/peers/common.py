"""Shared by the peer benchmarks: the synthetic catalogue they all read, memory, and report writing."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from export.synthetic.catalogs import SynthParams, write_synthetic_catalog  # noqa: E402
from runtime.tools.bench import machine_description  # noqa: E402
from runtime.versions import installed_versions  # noqa: E402

#: The peers' own libraries, recorded next to ours in every report.
PEER_LIBRARIES = ("faiss-cpu", "usearch", "scikit-learn", "torch")

HERE = Path(__file__).resolve().parent
TOP = 7
# The machine is shared: the load average over the run says how far to trust absolute numbers.
LOAD_AT_START = os.getloadavg()


def load_note(at_start: tuple[float, ...], at_end: tuple[float, ...], own_threads: int) -> str:
    """A note on the machine's load during a run (measured, never a fixed claim): a load average above the
    benchmark's own threads means other jobs shared the cores."""
    cores = os.cpu_count() or 1
    busiest = max(at_start[0], at_end[0], at_end[1])
    verdict = (f"within the benchmark's own {own_threads} threads: no other heavy job" if busiest <= own_threads + 0.5 else
               "other jobs shared the cores: absolute numbers are pessimistic; read ratios between rows of one run")
    return (f"load average (1/5/15 min) {'/'.join(f'{x:.1f}' for x in at_start)} at start, "
            f"{'/'.join(f'{x:.1f}' for x in at_end)} at end, on {cores} cores: {verdict}.")


def catalogue(items: int, dim: int, cache: Path) -> Path:
    """A synthetic catalogue directory of ``items`` rows (made once, then reused)."""
    out = cache / f"synth-{items}-{dim}"
    if not (out / "titles.csv").is_file():
        write_synthetic_catalog(out, SynthParams(items=items, dim=dim))
    return out


def rss_mib() -> float:
    """Resident memory now (not the peak): differences around a build give the index's memory."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def queries_near(vectors: np.ndarray, count: int, seed: int = 0, noise: float = 0.25) -> np.ndarray:
    """New 'photos' of catalogue products: catalogue rows plus image-level noise, renormalised."""
    rng = np.random.default_rng(seed)
    base = np.asarray(vectors[np.sort(rng.choice(len(vectors), count, replace=False))], dtype=np.float32)
    base += noise * rng.standard_normal(base.shape, dtype=np.float32) / np.float32(np.sqrt(base.shape[1]))
    return base / np.linalg.norm(base, axis=1, keepdims=True)


def write(name: str, report: dict[str, Any], table: list[str], own_threads: int) -> None:
    note = load_note(LOAD_AT_START, os.getloadavg(), own_threads)
    machine = machine_description()
    machine["libraries"] = {**machine["libraries"], **installed_versions(PEER_LIBRARIES)}
    report = {"machine": machine, "note": note, **report}
    (HERE / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    m = report["machine"]
    head = [f"# {name}", "", f"Machine: {m['cpu']}, {m['cores_usable']} cores, {m['ram_gib']} GiB; "
            f"{', '.join(f'{k} {v}' for k, v in m['libraries'].items())}.", "", f"Note: {note}", ""]
    (HERE / f"{name}.md").write_text("\n".join(head + table) + "\n", encoding="utf-8")
    print("\n".join(table))


def exact_top(vectors: np.ndarray, queries: np.ndarray, top: int = TOP, chunk: int = 50_000) -> np.ndarray:
    """Exact inner-product top-k by blocks of catalogue rows (the ground truth)."""
    best_ids = np.zeros((len(queries), 0), dtype=np.int64)
    best_scores = np.zeros((len(queries), 0), dtype=np.float32)
    for start in range(0, len(vectors), chunk):
        scores = queries @ np.asarray(vectors[start : start + chunk]).T
        ids = np.broadcast_to(np.arange(start, start + scores.shape[1]), scores.shape)
        scores = np.concatenate([best_scores, scores], axis=1)
        ids = np.concatenate([best_ids, ids], axis=1)
        part = np.argpartition(-scores, top - 1, axis=1)[:, :top]
        best_scores, best_ids = np.take_along_axis(scores, part, 1), np.take_along_axis(ids, part, 1)
    return best_ids


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f.tolist()) & set(t.tolist())) / TOP for f, t in zip(found, truth)]))
