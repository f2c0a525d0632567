"""`shadematch bench --compare`: two bundles benchmarked side by side in one run, and the ratios.

The machine is shared and noisy, so only ratios measured in one interleaved run compare: each round runs
`shadematch bench` on the reference and then on the candidate, each in a process of its own (so each peak RSS is its
own), on the same photos; the report gives the medians over the rounds and candidate / reference for every figure.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any, Sequence

from ..errors import ShadematchError
from .bench import STAGES, THROUGHPUT_BATCHES


def compare(reference: Path, candidate: Path, *, rounds: int = 2, bench_args: Sequence[str] = (),
            reference_code: Path | None = None) -> dict[str, Any]:
    """Bench ``reference`` and ``candidate`` alternately ``rounds`` times; ``bench_args`` go to every bench (photos,
    threads, OCR, backend, repeats). ``reference_code``: a checkout of another shadematch version (its root folder)
    that benches the reference, so today's code can be compared with an earlier one in the same run."""
    if rounds < 1:
        raise ShadematchError(f"--rounds must be at least 1, got {rounds}")
    if reference_code is not None and not (reference_code / "runtime" / "cli.py").is_file():
        raise ShadematchError(f"{reference_code}: not a shadematch checkout (no runtime/cli.py)")
    runs: dict[str, list[dict[str, Any]]] = {"reference": [], "candidate": []}
    for _ in range(rounds):
        for role, bundle, code in (("reference", reference, reference_code), ("candidate", candidate, None)):
            runs[role].append(_bench(bundle, bench_args, code))
    rows: dict[str, dict[str, float]] = {}
    for key in ("p50_ms", "p95_ms"):
        rows[f"total {key}"] = _row(runs, lambda r, key=key: r["total"][key])
    for stage in STAGES:
        if all("p50_ms" in r["stages"].get(stage, {}) for role in runs.values() for r in role):  # an older bench may lack it
            rows[f"{stage} p50_ms"] = _row(runs, lambda r, stage=stage: r["stages"][stage]["p50_ms"])
    for batch in THROUGHPUT_BATCHES:
        rows[f"photos/s batch {batch}"] = _row(runs, lambda r, batch=batch: r["throughput"][str(batch)]["images_per_s"])
    rows["peak RSS MiB"] = _row(runs, lambda r: r["peak_rss_mb"], pick=max)
    return {"reference": _describe(runs["reference"][0]), "candidate": _describe(runs["candidate"][0]),
            "reference_code": str(reference_code) if reference_code else None, "rounds": rounds, "bench_args": list(bench_args), "machine": runs["reference"][0]["machine"], "rows": rows,
            "runs": runs}


def _bench(bundle: Path, bench_args: Sequence[str], code: Path | None) -> dict[str, Any]:
    if code is None:
        command, cwd, env = [*_shadematch(), "bench", "--bundle", str(bundle), "--json", *bench_args], None, None
    else:  # that checkout's modules first on the path, in a process of their own, with only its query-time commands
        command = [sys.executable, "-c", _QUERY_TIME_CLI, "bench", "--bundle", str(Path(bundle).resolve()), "--json",
                   *(str(Path(a).resolve()) if Path(a).exists() else a for a in bench_args)]
        cwd, env = str(code), {**os.environ, "PYTHONPATH": str(code.resolve())}
    done = subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise ShadematchError(f"bench of {bundle} failed: {last}")
    return json.loads(done.stdout)


#: `shadematch` of another checkout without the offline commands this installation registers (entry points): those
#: name functions of this version's `export`, which the other checkout's may not have.
_QUERY_TIME_CLI = (
    "import importlib.metadata as m, runpy, sys; found = m.entry_points; "
    "m.entry_points = lambda **k: [] if k.get('group') == 'shadematch.commands' else found(**k); "
    "sys.argv[0] = 'shadematch'; runpy.run_module('runtime.cli', run_name='__main__')"
)


def _shadematch() -> list[str]:
    """This program again: the executable itself when frozen (PyInstaller), else this Python with the CLI module."""
    return [sys.executable] if getattr(sys, "frozen", False) else [sys.executable, "-m", "runtime.cli"]


def _row(runs: dict[str, list[dict[str, Any]]], value: Any, pick: Any = statistics.median) -> dict[str, float]:
    reference = float(pick(value(r) for r in runs["reference"]))
    candidate = float(pick(value(r) for r in runs["candidate"]))
    return {"reference": reference, "candidate": candidate, "ratio": candidate / reference if reference else float("nan")}


def _describe(report: dict[str, Any]) -> dict[str, Any]:
    return {**report["bundle"], "backend": report["backend"], "ocr": report["ocr"]}


def to_markdown(summary: dict[str, Any]) -> str:
    """The comparison as a Markdown page: what was compared, on what, and one row per figure."""
    ref, cand, m = summary["reference"], summary["candidate"], summary["machine"]
    lines = [
        f"# shadematch bench --compare: {cand['model']} against {ref['model']}", "",
        f"Reference: `{ref['path']}` ({ref['model']}, {ref['items']} items"
        f"{', benched by the code at ' + summary['reference_code'] if summary.get('reference_code') else ''}). Candidate: `{cand['path']}` ({cand['model']}, "
        f"{cand['items']} items). Backend {cand['backend']}, OCR {'on' if cand['ocr'] else 'off'}; "
        f"{summary['rounds']} interleaved round(s), medians (peak RSS: the largest); bench options: "
        f"{' '.join(summary['bench_args']) or 'none'}.",
        f"Machine: {m['cpu']}, {m['cores_usable']} usable core(s), {m['ram_gib']} GiB RAM, Python {m['python']}.", "",
        "| figure | reference | candidate | candidate / reference |", "|---|---:|---:|---:|",
        *(f"| {name} | {row['reference']:.2f} | {row['candidate']:.2f} | {row['ratio']:.2f} |"
          for name, row in summary["rows"].items()),
        "",
    ]
    return "\n".join(lines)


def write_comparison(summary: dict[str, Any], directory: Path) -> tuple[Path, Path]:
    """compare.json and compare.md in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    json_path, md_path = directory / "compare.json", directory / "compare.md"
    json_path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    md_path.write_text(to_markdown(summary), encoding="utf-8")
    return json_path, md_path
