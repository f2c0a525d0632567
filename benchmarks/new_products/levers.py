"""Build- and query-time levers of the unseen-products protocol, each scored on one extraction of descriptors.

For a model and the bundles `run.py` built with it, this extracts once (cached in ``--work``): the raw SR-MAC
descriptors of both galleries, of the 16 store-like views of every catalogue image (as `build` makes them), and
of the query photos under a few crops. Each lever is then a different projection, gallery or query descriptor,
swapped into the built bundle (its text map, catalogue and products unchanged) and scored by `shadematch eval`'s
own `score` with label reading off: the figures are those of the visual search + vote + Algorithm 1.

Usage: python benchmarks/new_products/levers.py --work WORK --label unseen [--queries-split val]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import PROTOCOLS, RESULTS  # noqa: E402
from split import write_json_atomic  # noqa: E402

from export.bundle.adapt import AdaptOptions, fit_adapted, view_descriptors, view_rows, view_source  # noqa: E402
from export.bundle.catalog import read_catalog_csv  # noqa: E402
from export.train.augment import heap_like, store_like  # noqa: E402
from export.train.saliency import foreground_mask  # noqa: E402
from runtime.backends import open_backend  # noqa: E402
from runtime.bundle.read import open_bundle  # noqa: E402
from runtime.describe.embedder import Embedder  # noqa: E402
from runtime.describe.image import prepare  # noqa: E402
from runtime.describe.pooling import l2_normalize, srmac  # noqa: E402
from runtime.describe.views import QueryViews  # noqa: E402
from runtime.retriever import Retriever  # noqa: E402
from runtime.search.index import VisualIndex  # noqa: E402
from runtime.tools.evaluate import read_queries, score  # noqa: E402

VIEWS = 16
#: Other store-like view sets of single-image products: {name: (views per image, of which heaps)}.
VIEW_SETS = {"32 store-like views": (32, 0), "8 store-like + 8 heap views": (16, 8),
             "16 store-like + 16 heap views": (32, 16)}
#: Query crops: the card's own (shorter side, centre crop), closer ones (central 80 % and 64 %: what
#: runtime.describe.views crops), and the whole photo letterboxed.
CROPS = ("centre", "zoom", "whole", "zoom64", "map80", "map60")
#: Query views scored as levers: {name: ((crop, weight), ...)}, descriptors summed before the projection.
VIEW_SUMS = {"+ query views: zoom 0.8, weight 0.5": (("centre", 1.0), ("zoom", 0.5)),
             "+ query views: zoom 0.8, weight 1": (("centre", 1.0), ("zoom", 1.0)),
             "+ query views: zoom 0.64, weight 0.5": (("centre", 1.0), ("zoom64", 0.5)),
             "+ query views: zoom 0.8 and 0.64, weight 0.5 each (build default)": (("centre", 1.0), ("zoom", 0.5),
                                                                               ("zoom64", 0.5)),
             "+ map views: 80 % and 60 % of the photo's feature map, weight 0.5 each": (("centre", 1.0),
                                                                                    ("map80", 0.5), ("map60", 0.5)),
             "+ map views: 80 % and 60 % of the photo's feature map, weight 1 each": (("centre", 1.0),
                                                                                  ("map80", 1.0), ("map60", 1.0)),
             "+ map views: 80 % of the photo's feature map, weight 1": (("centre", 1.0), ("map80", 1.0))}
#: Zooms without another model run: SR-MAC over the central cells of the photo's own X and S maps (``fraction`` of
#: the map's side), i.e. what the central crop of the photo looks like to the trunk that saw the whole photo.
MAP_CROPS = {"map80": 0.8, "map60": 0.6}


def crop(image: Image.Image, kind: str) -> Image.Image:
    """The photo as a crop kind sees it, before the card's resize."""
    if kind == "centre":
        return image
    if kind in ("zoom", "zoom64"):
        return QueryViews(zooms=(0.8 if kind == "zoom" else 0.64,)).crops(image)[1]
    side = max(image.size)
    return ImageOps.pad(image, (side, side), color=(127, 127, 127))


def cached(path: Path, make: Callable[[], np.ndarray]) -> np.ndarray:
    if path.is_file():
        return np.load(path)
    array = make()
    np.save(path, array)
    return array


def mixed_views(chosen: np.ndarray, rows: Sequence, embedder: Embedder, count: int, heaps: int) -> np.ndarray:
    """(len(chosen), count, D) descriptors of ``count`` views per chosen row, as `build` seeds them: store-like
    ones, then (same generator) the last ``heaps`` of them heaps of copies (`heap_like`: does a bin of fruit
    or a shelf facing teach the projection what a store photo of the one pictured product looks like?)."""
    size = max(embedder.card.input.height, embedder.card.input.width)
    out = np.empty((len(chosen), count, embedder.card.feature_dim), dtype=np.float32)
    for i, row in enumerate(chosen):
        pixels = view_source(str(rows[row].image), size)
        mask, outline = foreground_mask(pixels), foreground_mask(pixels, convex=False)
        rng = np.random.default_rng((0, int(row)))
        views = [store_like(pixels, mask, rng, size)[0] for _ in range(count - heaps)]
        views += [heap_like(pixels, outline, rng, size)[0] for _ in range(heaps)]
        out[i] = embedder.embed(views, batch_size=16)
    return out


def describe(embedder: Embedder, images: Sequence[Path], kind: str) -> np.ndarray:
    """Descriptors of the query photos as crop ``kind`` sees them; a map crop pools part of the card crop's maps."""
    fraction = MAP_CROPS.get(kind)
    out = []
    for i in range(0, len(images), 16):
        batch = np.stack([prepare(crop(embedder.decode(image), "centre" if fraction else kind), embedder.card.input)
                          for image in images[i:i + 16]])
        out.append(embedder.embed_batch(batch) if fraction is None else central_srmac(embedder, batch, fraction))
    return np.concatenate(out)


def central_srmac(embedder: Embedder, batch: np.ndarray, fraction: float) -> np.ndarray:
    """SR-MAC of the central ``fraction`` of each input's X and S maps (one model run, no zoomed input)."""
    maps = embedder.run_model(batch)
    features, saliency = maps[embedder.card.outputs["features"]], maps[embedder.card.outputs["saliency"]]
    h, w = features.shape[2:]
    ch, cw = max(1, round(h * fraction)), max(1, round(w * fraction))
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    return srmac(features[:, :, y0:y0 + ch, x0:x0 + cw], saliency[:, :, y0:y0 + ch, x0:x0 + cw], embedder.levels)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="run.py's work folder")
    parser.add_argument("--label", default="unseen", help="run.py's label of the bundles (default: unseen)")
    parser.add_argument("--queries-split", default="val", help="the query photos' split (default: val)")
    parser.add_argument("--results", type=Path, default=RESULTS, help=f"results folder (default: {RESULTS})")
    parser.add_argument("--only", help="score only the levers whose name holds this text (skips the other view sets)")
    args = parser.parse_args(argv)
    cache = args.work / "levers" / args.label
    cache.mkdir(parents=True, exist_ok=True)
    csv_dir = args.work / "csv"
    report: dict = {"label": args.label, "queries_split": args.queries_split, "rows": {}}
    for protocol, catalog in PROTOCOLS.items():
        bundle = open_bundle(args.work / "bundles" / f"{args.label}-{protocol}", verify=False)
        backend = open_backend(bundle.model_path, "onnxruntime", threads=2)
        embedder = Embedder(backend, bundle.card, bundle.levels)
        rows, _ = read_catalog_csv(csv_dir / catalog)
        groups = [row.group for row in rows]
        gallery = cached(cache / f"{protocol}_gallery.npy", lambda: embedder.embed([row.image for row in rows]))
        options = AdaptOptions(views=VIEWS)
        chosen = view_rows(groups, VIEWS, options.seed)
        views = cached(cache / f"{protocol}_views.npy",
                       lambda: view_descriptors(chosen, rows, embedder, options, False)) if len(chosen) else None
        other_views = {name: cached(cache / f"{protocol}_views_{count}_{heaps}.npy",
                                    lambda count=count, heaps=heaps: mixed_views(chosen, rows, embedder, count, heaps))
                       for name, (count, heaps) in VIEW_SETS.items()
                       if args.only is None or args.only in f"adapted, {name}"} if len(chosen) else {}
        retriever = Retriever(bundle, backend)
        for queries_name in ("unseen", "seen"):
            queries = read_queries(csv_dir / f"{args.queries_split}_{queries_name}_queries.csv")
            raw = {kind: cached(cache / f"{protocol}_{queries_name}_{kind}.npy",
                                lambda kind=kind: describe(embedder, [q.image for q in queries], kind)) for kind in CROPS}
            for lever, (rows_indexed, projection, query) in levers(gallery, groups, chosen, views, raw,
                                                                   other_views).items():
                if args.only is not None and args.only not in lever:
                    continue
                variant = dataclasses.replace(bundle, index=VisualIndex.build(rows_indexed), projection=projection,
                                              confidence=None)  # fitted in the bundle's own space
                retriever.bundle = variant
                figures = score(retriever, queries, query, None)
                packages = figures.get("subsets", {}).get("Packages", {})
                report["rows"].setdefault(lever, {})[f"{protocol}/{queries_name}"] = {
                    "map7": round(figures["map7"], 3), "top1": round(figures["top1"], 3),
                    "packages_top1": round(packages["top1"], 3) if packages else None}
                print(f"{lever:32s} {protocol}/{queries_name}: map7 {figures['map7']:.3f} top1 {figures['top1']:.3f}",
                      flush=True)
        retriever.bundle = bundle
        backend.close()
    out = args.results / f"levers_{args.label}_{args.queries_split}.json"
    if args.only is not None and out.is_file():  # a partial run adds its rows to the report's others
        rows = json.loads(out.read_text())["rows"]
        rows.update(report["rows"])
        report["rows"] = rows
    write_json_atomic(out, report)
    print(f"wrote {out}")
    return 0


def levers(gallery: np.ndarray, groups: list[str], chosen: np.ndarray, views: np.ndarray | None,
           raw: dict[str, np.ndarray], other_views: dict[str, np.ndarray]) -> dict[str, tuple]:
    """{lever: (indexed rows, projection or None, query descriptors in the indexed space)}."""
    multi = l2_normalize(sum(raw[kind] for kind in ("centre", "zoom", "whole")))
    out = {"no projection": (gallery, None, raw["centre"])}
    for name, extra in other_views.items():
        adapted = fit_adapted(gallery, groups, chosen, extra, AdaptOptions(views=extra.shape[1]))
        projection = adapted.projection[0]
        out[f"adapted, {name}"] = (adapted.vectors, projection, projection.apply(raw["centre"]))
    for shrinkage in (None, 0.1, 0.3, 0.5, 0.7, 0.9):
        adapted = fit_adapted(gallery, groups, chosen, views, AdaptOptions(views=VIEWS, shrinkage=shrinkage))
        name = "adapted (default)" if shrinkage is None else f"adapted, shrinkage {shrinkage}"
        projection = adapted.projection[0]
        query = projection.apply(raw["centre"])
        out[name] = (adapted.vectors, projection, query)
        if shrinkage is None:
            out["adapted + query crops x3"] = (adapted.vectors, projection, projection.apply(multi))
            out["adapted + zoom crop"] = (adapted.vectors, projection, projection.apply(raw["zoom"]))
            for name, parts in VIEW_SUMS.items():
                summed = l2_normalize(sum(weight * raw[kind] for kind, weight in parts))
                out[f"adapted {name}"] = (adapted.vectors, projection, projection.apply(summed))
            for k in (1, 3):
                out[f"adapted + query expansion k={k}"] = (adapted.vectors, projection,
                                                           expand(query, adapted.vectors, k))
            out["adapted + database augmentation k=2"] = (expand(adapted.vectors, adapted.vectors, 3),
                                                          projection, query)
    return out


def expand(vectors: np.ndarray, gallery: np.ndarray, k: int, alpha: float = 3.0) -> np.ndarray:
    """alpha-weighted query expansion (Radenovic et al., TPAMI 2019): each vector plus its k nearest gallery rows,
    weighted by similarity**alpha. With the gallery itself as ``vectors`` (k counts the row itself) it is database
    augmentation."""
    similarity = vectors @ gallery.T
    nearest = np.argsort(-similarity, axis=1)[:, :k]
    weights = np.clip(np.take_along_axis(similarity, nearest, axis=1), 0.0, None) ** alpha
    return l2_normalize(vectors + np.einsum("qk,qkd->qd", weights, gallery[nearest]))


if __name__ == "__main__":
    sys.exit(main())
