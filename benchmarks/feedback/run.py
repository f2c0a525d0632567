"""The kiosk that learns (issue 26): confirmed shopper photos fed through the real kiosk API, then `update
--feedback`, scored by `shadematch eval` on the val photos that were not fed.

For each n in --per-product (photos confirmed per product, seeded; a product keeps at least one photo to score)
and each wrong-confirmation rate: start a kiosk with a fresh feedback database on the catalogue-only bundle, POST
each chosen photo to /api/query and its product (or, for the wrong share, another product, seeded) to
/api/feedback, update the bundle with the database, and evaluate the original and the updated bundle on the same
remaining photos. Results: results/<label>.json, results/<label>.md and results/<label>.png (top-1 against n).

Usage: python benchmarks/feedback/run.py --bundle CATALOGUE_ONLY_BUNDLE --queries VAL_QUERIES_CSV --work W
           [--per-product 1 2 4] [--wrong 0 0.1] [--label shipped_val]
"""
from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

from runtime import Retriever  # noqa: E402
from runtime.bundle import open_bundle  # noqa: E402
from runtime.feedback.store import Feedback, FeedbackStore  # noqa: E402
from runtime.kiosk import KioskServer  # noqa: E402
from runtime.kiosk.client import KioskClient  # noqa: E402

SEED = 20261207


def shadematch(*args: str) -> str:
    return subprocess.run([sys.executable, "-m", "shadematch", *args], check=True, capture_output=True, text=True).stdout


def read_queries(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def split_feed(queries: list[dict], n: int, rng: np.random.Generator) -> tuple[list[dict], list[dict]]:
    """Per product, n photos to confirm (at most all but one) and the rest to score."""
    by_group: dict[str, list[dict]] = defaultdict(list)
    for query in queries:
        by_group[query["group"]].append(query)
    fed, rest = [], []
    for group in sorted(by_group):
        photos = by_group[group]
        order = rng.permutation(len(photos))
        take = min(n, len(photos) - 1)
        fed += [photos[i] for i in order[:take]]
        rest += [photos[i] for i in order[take:]]
    return fed, rest


def feed(bundle: Path, db: Path, fed: list[dict], wrong: float, rng: np.random.Generator) -> dict:
    """Every fed photo through the kiosk's HTTP API; returns how many answers and confirmations went in."""
    catalogue = open_bundle(bundle, verify=False).catalog
    item_of = {}
    for item in catalogue:
        item_of.setdefault(item.group, item.id)
    groups = sorted(item_of)
    liars = set(rng.choice(len(fed), size=int(round(wrong * len(fed))), replace=False).tolist()) if wrong else set()
    statuses: dict[str, int] = defaultdict(int)
    with KioskServer(Retriever.open(bundle), port=0, workers=1, feedback=Feedback(FeedbackStore(db))) as server:
        client = KioskClient(server.start().url, timeout=120)
        for i, query in enumerate(fed):
            answer = client.query(Path(query["image"]).read_bytes(), filename=Path(query["image"]).name)
            statuses[f"query {answer.status}"] += 1
            group = query["group"]
            if i in liars:
                group = groups[(groups.index(group) + 1 + int(rng.integers(len(groups) - 1))) % len(groups)]
            reply = client.feedback(answer.json()["query_id"], item_of[group])
            statuses[f"feedback {reply.status}"] += 1
    return {"fed": len(fed), "wrong": len(liars), "statuses": dict(statuses)}


def top1(bundle: Path, queries_csv: Path) -> dict:
    report = json.loads(shadematch("eval", "--bundle", str(bundle), "--queries", str(queries_csv), "--json"))
    packages = report["subsets"].get("Packages", {})
    return {"top1": round(report["top1"], 4), "map7": round(report["map7"], 4),
            "packages_top1": round(packages.get("top1", float("nan")), 4), "queries": report["queries"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bundle", type=Path, required=True, help="the catalogue-only bundle to start from")
    parser.add_argument("--queries", type=Path, required=True, help="val queries CSV image,group,subset")
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--per-product", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--wrong", type=float, nargs="+", default=[0.0, 0.1])
    parser.add_argument("--label", default="shipped_val")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    queries = read_queries(args.queries)
    rows = []
    for n in args.per_product:
        fed, rest = split_feed(queries, n, np.random.default_rng(SEED + n))
        rest_csv = args.work / f"rest_{n}.csv"
        with open(rest_csv, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(queries[0]))
            writer.writeheader()
            writer.writerows(rest)
        before = top1(args.bundle, rest_csv)
        for wrong in args.wrong:
            started = time.perf_counter()
            db = args.work / f"feedback_{n}_{wrong:g}.sqlite"
            db.unlink(missing_ok=True)
            fed_report = feed(args.bundle, db, fed, wrong, np.random.default_rng(SEED + 100 + n))
            updated = args.work / f"updated_{n}_{wrong:g}"
            update = json.loads(shadematch("update", "--bundle", str(args.bundle), "--feedback", str(db), "--out",
                                           str(updated), "--force", "--quiet", "--json"))
            after = top1(updated, rest_csv)
            row = {"per_product": n, "wrong_share": wrong, **fed_report, "update": update["feedback"],
                   "before": before, "after": after, "gain_top1": round(after["top1"] - before["top1"], 4),
                   "seconds": round(time.perf_counter() - started, 1)}
            rows.append(row)
            print(json.dumps(row), flush=True)
            (HERE / "results").mkdir(exist_ok=True)
            (HERE / "results" / f"{args.label}.json").write_text(json.dumps(
                {"bundle": str(args.bundle), "queries": str(args.queries), "seed": SEED, "rows": rows}, indent=2) + "\n")
    write_table(rows, HERE / "results" / f"{args.label}.md")
    plot(rows, HERE / "results" / f"{args.label}.png")


def write_table(rows: list[dict], path: Path) -> None:
    lines = ["| confirmed photos per product | wrong confirmations | photos fed | added / held back | scored photos | "
             "top-1 before | top-1 after | gain | Packages top-1 before -> after |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['per_product']} | {r['wrong']} ({r['wrong_share']:.0%}) | {r['fed']} | "
                     f"{r['update']['added']} / {len(r['update']['held_back'])} | {r['after']['queries']} | "
                     f"{r['before']['top1']:.3f} | {r['after']['top1']:.3f} | {r['gain_top1']:+.3f} | "
                     f"{r['before']['packages_top1']:.3f} -> {r['after']['packages_top1']:.3f} |")
    path.write_text("\n".join(lines) + "\n")


def plot(rows: list[dict], path: Path) -> None:
    """Top-1 on the remaining photos against confirmed photos per product, one line per wrong share (Pillow)."""
    from PIL import Image, ImageDraw

    width, height, pad = 640, 400, 60
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    ns = sorted({r["per_product"] for r in rows})
    values = [v for r in rows for v in (r["before"]["top1"], r["after"]["top1"])]
    lo, hi = min(values) - 0.02, max(values) + 0.02
    x = lambda n: pad + (ns.index(n) + 1) * (width - 2 * pad) / (len(ns) + 1)  # noqa: E731
    y = lambda v: height - pad - (v - lo) / (hi - lo) * (height - 2 * pad)  # noqa: E731
    draw.line([(pad, height - pad), (width - pad, height - pad)], fill="black")
    draw.line([(pad, pad), (pad, height - pad)], fill="black")
    for tick in np.linspace(lo, hi, 5):
        draw.text((5, y(tick) - 6), f"{tick:.3f}", fill="black")
    for n in ns:
        draw.text((x(n) - 4, height - pad + 8), str(n), fill="black")
    draw.text((width // 2 - 120, height - 25), "confirmed photos per product", fill="black")
    draw.text((pad, 15), "catalogue-only top-1 on the remaining val photos", fill="black")
    colours = ["#1f77b4", "#d62728", "#2ca02c"]
    for c, wrong in enumerate(sorted({r["wrong_share"] for r in rows})):
        points = [(x(r["per_product"]), y(r["after"]["top1"])) for r in rows if r["wrong_share"] == wrong]
        draw.line(points, fill=colours[c % 3], width=2)
        for px, py in points:
            draw.ellipse([px - 3, py - 3, px + 3, py + 3], fill=colours[c % 3])
        draw.text((width - pad - 150, pad + 15 * c), f"after, {wrong:.0%} wrong", fill=colours[c % 3])
    base = [(x(r["per_product"]), y(r["before"]["top1"])) for r in rows if r["wrong_share"] == rows[0]["wrong_share"]]
    draw.line(base, fill="grey", width=1)
    draw.text((width - pad - 150, pad + 45), "before (same photos)", fill="grey")
    image.save(path)


if __name__ == "__main__":
    main()
