"""A living catalogue at scale: update a 500K-item bundle (1,000 added, 1,000 removed) against building it.

    python benchmarks/update/update_bench.py --work /tmp/shadematch-update-500k [--items 500000] [--delta 1000]

Steps (each reused when its output is already in --work):
1. `shadematch synth-catalog` of items + delta rows (no CNN: the build-vectors path);
2. the base catalogue (the first ``items`` rows) built with `shadematch build-vectors`, under /usr/bin/time -v;
3. `shadematch update --add titles.csv --add-vectors V.npy --remove ids.txt` (the last ``delta`` rows added, ``delta``
   random base rows removed), under /usr/bin/time -v;
4. the final catalogue built at once (`build-vectors` on the updated bundle's rows, same order), and recall@7 at the
   stored ef of the updated and the rebuilt index on the same queries against exact search; that no removed id
   is left in the updated catalogue.
Writes benchmarks/update/update_<N>k.json and .md.
"""
from __future__ import annotations

import argparse
import csv
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from runtime.bundle import open_bundle
from runtime.tools.bench import machine_description

HERE = Path(__file__).resolve().parent


def timed(*args: str) -> tuple[str, float, float]:
    """Run `shadematch ARGS` under /usr/bin/time -v: (stdout, wall seconds, peak RSS MiB)."""
    started = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-v", sys.executable, "-m", "runtime.cli", *args], capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"shadematch {args[0]} failed: {done.stderr.strip()[-2000:]}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1)) / 1024
    return done.stdout, wall, rss


def split(cat: Path, work: Path, items: int, delta: int, seed: int) -> None:
    """Base vectors/titles (first ``items`` rows), the added rows, and ``delta`` base ids to remove."""
    vectors = np.load(cat / "vectors.npy", mmap_mode="r")
    with open(cat / "titles.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], rows[1:]
    np.save(work / "base_vectors.npy", np.ascontiguousarray(vectors[:items]))
    np.save(work / "add_vectors.npy", np.ascontiguousarray(vectors[items : items + delta]))
    for name, part in (("base_titles.csv", body[:items]), ("add_titles.csv", body[items : items + delta])):
        with open(work / name, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(part)
    gone = np.sort(np.random.default_rng(seed).choice(items, delta, replace=False))
    (work / "remove.txt").write_text("\n".join(body[i][0] for i in gone) + "\n", encoding="utf-8")


def recall(bundle: Path, queries: int, seed: int) -> dict:
    """recall@7 at the stored ef against exact search, on catalogue rows moved a little (queries near items: the
    same queries for two bundles of the same rows)."""
    opened = open_bundle(bundle, verify=False)
    vectors = np.asarray(opened.index.vectors)
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(vectors), queries, replace=False)
    near = vectors[picks] + 0.05 * rng.standard_normal((queries, vectors.shape[1])).astype(np.float32)
    near /= np.linalg.norm(near, axis=1, keepdims=True)
    ids, _ = opened.index.search(near, 7)
    exact = np.argsort(-(near @ vectors.T), axis=1)[:, :7]
    return {"recall_at_7": float(np.mean([len(set(a) & set(b)) / 7 for a, b in zip(ids.tolist(), exact.tolist())])),
            "ef": opened.index.params.ef, "rows": len(vectors), "deleted_in_graph": opened.index.deleted,
            "min_row": int(ids.min()), "max_row": int(ids.max())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--items", type=int, default=500_000)
    parser.add_argument("--delta", type=int, default=1000)
    parser.add_argument("--dim", type=int, default=1280)
    parser.add_argument("--M", type=int, default=24)
    parser.add_argument("--ef-construction", type=int, default=60)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--note", default="")
    args = parser.parse_args()
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    report: dict = {"items": args.items, "delta": args.delta, "dim": args.dim, "M": args.M,
                    "ef_construction": args.ef_construction, "note": args.note, "machine": machine_description()}
    cat = work / "cat"
    if not (cat / "vectors.npy").is_file():
        subprocess.run([sys.executable, "-m", "runtime.cli", "synth-catalog", "--items", str(args.items + args.delta),
                        "--dim", str(args.dim), "--out", str(cat)], check=True)
    if not (work / "remove.txt").is_file():
        split(cat, work, args.items, args.delta, seed=1)
    base = work / "base"
    if not (base / "manifest.json").is_file():
        out, report["build_s"], report["build_peak_rss_mib"] = timed(
            "build-vectors", "--vectors", str(work / "base_vectors.npy"), "--titles", str(work / "base_titles.csv"),
            "--out", str(base), "--force", "--M", str(args.M), "--ef-construction", str(args.ef_construction),
            "--text-max-df", "0.01", "--threads", "2", "--json")
        report["build"] = json.loads(out)
        (work / "build.json").write_text(json.dumps(report["build"] | {"wall_s": report["build_s"],
                                                                       "peak_rss_mib": report["build_peak_rss_mib"]}))
    else:
        saved = json.loads((work / "build.json").read_text())
        report["build"], report["build_s"], report["build_peak_rss_mib"] = saved, saved["wall_s"], saved["peak_rss_mib"]
    out, report["update_s"], report["update_peak_rss_mib"] = timed(
        "update", "--bundle", str(base), "--add", str(work / "add_titles.csv"), "--add-vectors",
        str(work / "add_vectors.npy"), "--remove", str(work / "remove.txt"), "--out", str(work / "updated"),
        "--force", "--quiet", "--json")
    report["update"] = json.loads(out)
    rebuilt = work / "rebuilt"
    if not (rebuilt / "manifest.json").is_file():
        catalogue = open_bundle(work / "updated", verify=False).catalog
        with open(work / "final_titles.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["id", "title", "group"])
            writer.writerows((item.id, item.title, item.group) for item in catalogue)
        _, wall, rss = timed(
            "build-vectors", "--vectors", str(work / "updated" / "vectors.npy"), "--titles", str(work / "final_titles.csv"),
            "--out", str(rebuilt), "--force", "--M", str(args.M), "--ef-construction", str(args.ef_construction),
            "--text-max-df", "0.01", "--threads", "2", "--json")
        (work / "rebuild.json").write_text(json.dumps({"wall_s": wall, "peak_rss_mib": rss}))
    saved = json.loads((work / "rebuild.json").read_text()) if (work / "rebuild.json").is_file() else {}
    report["rebuild_s"], report["rebuild_peak_rss_mib"] = saved.get("wall_s"), saved.get("peak_rss_mib")
    report["recall_updated"] = recall(work / "updated", args.queries, seed=2)
    report["recall_rebuilt"] = recall(rebuilt, args.queries, seed=2)
    gone = set((work / "remove.txt").read_text().split())
    report["removed_ids_in_updated_catalogue"] = sum(item.id in gone for item in open_bundle(work / "updated", verify=False).catalog)
    name = f"update_{args.items // 1000}k"
    (HERE / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in report.items() if k != "machine"}, indent=2))


if __name__ == "__main__":
    main()
