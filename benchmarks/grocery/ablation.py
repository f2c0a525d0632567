"""MANet ablation on the Grocery Store val photos (issue 3/6): which part earns its place.

One PyTorch pass per image gives the backbone features X0, the saliency S and the text mask T of a trained
MANet; the rows are descriptors made from the same pass with parts switched off at inference:
  fine-tuned backbone + R-MAC      srmac(X0, 1)
  + saliency (SR-MAC)              srmac(X0 * S, S)
  + text attention (MANet)         srmac(T * X0 * S, S)        (eqs. 2-7)
and the ImageNet trunk + R-MAC as the starting point. Each row is scored visual-only and with the two-stage
search at k = 1..6 (exact search; text map as `shadematch build` makes it).

    python benchmarks/grocery/ablation.py --checkpoint RUN/checkpoint.pt --catalog C.csv --queries Q.csv --out F.json
"""
from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from export.bundle.catalog import read_catalog_csv
from export.models.efficientnet_lite import VisualTrunk, load_imagenet_lite0
from export.bundle.textmap import build_text_map
from export.train.manet import load_manet
from runtime.tools.evaluate import read_queries
from runtime.describe.image import load_and_prepare
from runtime.search.index import IndexParams, VisualIndex
from runtime.tools.metrics import average_precision_at_k, mean
from runtime.describe.modelcard import InputSpec
from runtime.describe.pooling import srmac
from runtime.search.two_stage import two_stage_search


@torch.no_grad()
def descriptors(paths: list[Path], manet, spec: InputSpec, batch: int = 32) -> dict[str, np.ndarray]:
    trunk = VisualTrunk(load_imagenet_lite0()).eval()
    rows: dict[str, list[np.ndarray]] = {k: [] for k in ("imagenet", "backbone", "saliency", "manet")}
    for start in range(0, len(paths), batch):
        x = torch.from_numpy(np.stack([load_and_prepare(p, spec) for p in paths[start : start + batch]]))
        imagenet, ones = trunk(x)
        out = manet.attend(x)
        X0, S, T = out.X0.numpy(), out.S.numpy(), out.T.numpy()
        rows["imagenet"].append(srmac(imagenet.numpy(), ones.numpy()))
        rows["backbone"].append(srmac(X0, np.ones_like(S)))
        rows["saliency"].append(srmac(X0 * S, S))
        rows["manet"].append(srmac(T * X0 * S, S))
    return {k: np.concatenate(v) for k, v in rows.items()}


def score(gallery: np.ndarray, queries: np.ndarray, groups: list[str], query_groups: list[str], subsets: list[str],
          text_map, k: int) -> dict[str, float]:
    index = VisualIndex.build(gallery, IndexParams(exact_below=10**9))
    sizes = Counter(groups)
    hits = two_stage_search(queries, index, text_map, k=k, top=7)
    aps = [average_precision_at_k([groups[h.row] == g for h in row], sizes[g]) for row, g in zip(hits, query_groups)]
    top1 = [bool(row) and groups[row[0].row] == g for row, g in zip(hits, query_groups)]
    packages = [i for i, s in enumerate(subsets) if s == "Packages"]
    return {"map7": mean(aps), "map7_packages": mean([aps[i] for i in packages]), "top1": mean(top1),
            "top1_packages": mean([top1[i] for i in packages])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--catalog", type=Path, required=True)
    parser.add_argument("--queries", type=Path, required=True)
    parser.add_argument("--size", type=int, default=320)
    parser.add_argument("--per-group", type=int, default=0,
                        help="keep at most this many photos per group in the gallery (0: all), plus every catalogue image")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(2)
    spec = InputSpec("image", args.size, args.size, (127.0,) * 3, (128.0,) * 3, "shorter_side_center_crop")
    rows, problems = read_catalog_csv(args.catalog)
    assert not problems, problems
    if args.per_group:
        kept: dict[str, int] = {}
        reduced = []
        for row in rows:  # ids starting "iconic-" are the catalogue images (benchmarks/grocery/prepare.py)
            if row.id.startswith("iconic-") or kept.get(row.group, 0) < args.per_group:
                reduced.append(row)
                kept[row.group] = kept.get(row.group, 0) + (not row.id.startswith("iconic-"))
        rows = reduced
    queries = read_queries(args.queries)
    manet = load_manet(args.checkpoint)
    gallery = descriptors([r.image for r in rows], manet, spec)
    probes = descriptors([q.image for q in queries], manet, spec)
    text_map = build_text_map([r.title for r in rows])
    groups = [r.group for r in rows]
    report = {"size": args.size, "gallery": len(rows), "per_group": args.per_group, "queries": len(queries), "rows": {}}
    for name in gallery:
        report["rows"][name] = {
            "visual": score(gallery[name], probes[name], groups, [q.group for q in queries],
                            [q.subset for q in queries], text_map, 0),
            **{f"k{k}": score(gallery[name], probes[name], groups, [q.group for q in queries],
                              [q.subset for q in queries], text_map, k) for k in range(1, 7)},
        }
        print(name, json.dumps(report["rows"][name]["visual"]), flush=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
