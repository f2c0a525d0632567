"""Size and cold start of the standalone executable (packaging/build.sh), against the Python install.

    packaging/build.sh && packaging/build.sh --onefile      # the one-file build is optional
    shadematch demo --out /tmp/kiosk-demo
    python benchmarks/packaging/measure.py --bundle /tmp/kiosk-demo

Cold start = a new process with an empty environment (`env -i`), from exec to the first answer: for
`query`, the 7 matches of one photo printed; for `kiosk`, the first 200 answer to POST /api/query.
The file cache is warm (the machine is shared, so caches are not dropped): a first start after a reboot
also reads the files from disk. Each figure is the median of --runs runs. Writes report.json (README.md holds the reading).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
from machine import describe_machine  # noqa: E402

from runtime.kiosk.client import KioskClient  # noqa: E402

HERE = Path(__file__).resolve().parent
PHOTO = ROOT / "export" / "demo" / "images" / "yoggi-vanilla-yoghurt_query.jpg"


def size_mb(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file() and not p.is_symlink()]
    return round(sum(p.stat().st_size for p in files) / 1e6, 1)


def time_query(command: list[str], bundle: Path, runs: int) -> dict:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(["env", "-i", *command, "query", "--bundle", str(bundle), str(PHOTO), "--json"],
                              capture_output=True, text=True, timeout=120)
        times.append(time.perf_counter() - started)
        if done.returncode != 0 or len(json.loads(done.stdout)["results"][0]["matches"]) != 7:
            raise SystemExit(f"{command}: query failed: {done.stderr[-500:]}")
    return {"median_s": round(statistics.median(times), 3), "min_s": round(min(times), 3), "runs": runs}


def time_kiosk(command: list[str], bundle: Path, runs: int) -> dict:
    photo, times = PHOTO.read_bytes(), []
    for _ in range(runs):
        started = time.perf_counter()
        process = subprocess.Popen(["env", "-i", *command, "kiosk", "--bundle", str(bundle), "--port", "0"],
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            url = process.stdout.readline().split(" on ")[-1].strip()
            reply = KioskClient(url).query(photo)
            times.append(time.perf_counter() - started)
            if reply.status != 200:
                raise SystemExit(f"{command}: kiosk answered {reply.status}")
        finally:
            process.terminate()
            process.wait(timeout=10)
    return {"median_s": round(statistics.median(times), 3), "min_s": round(min(times), 3), "runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()

    builds = {"one-folder": ROOT / "dist" / "shadematch", "one-file": ROOT / "dist" / "shadematch-onefile"}
    commands = {"one-folder": [str(builds["one-folder"] / "shadematch")], "one-file": [str(builds["one-file"])],
                "python (venv, for comparison)": [sys.executable, "-m", "runtime.cli"]}
    report: dict = {"photo": PHOTO.name, "bundle": args.bundle.name, "builds": {}, "machine": describe_machine()}
    for name, command in commands.items():
        path = builds.get(name)
        if path is not None and not path.exists():
            continue
        entry = {"size_mb": size_mb(path)} if path is not None else {}
        if path is not None and path.is_dir():
            entry["files"] = sum(1 for p in path.rglob("*") if p.is_file())
        entry["query_cold_start"] = time_query(command, args.bundle, args.runs)
        entry["kiosk_start_to_first_answer"] = time_kiosk(command, args.bundle, args.runs)
        report["builds"][name] = entry
        print(name, json.dumps(entry))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
