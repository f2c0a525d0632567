"""Query views only where needed: how accuracy and the share of photos answered from one view move with a
confidence threshold T. A photo is described from its own crop first; when the bundle's calibrated confidence
of that answer's first match is at least T, the answer stands (one model input), else the two zooms run and the
summed descriptor answers (runtime.describe.views). Scored on labelled photos with a bundle built with query views.

Usage: python benchmarks/bench/cascade.py BUNDLE QUERIES_CSV [T ...] > out.json
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from runtime.describe.image import reduced
from runtime.describe.pooling import l2_normalize, srmac
from runtime.reading.photos import decode_photos
from runtime.reading.reader import product_box
from runtime.retriever import Retriever
from runtime.tools.evaluate import read_queries, score

THRESHOLDS = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 1.01)


def main(bundle: Path, queries_csv: Path, thresholds: tuple[float, ...]) -> None:
    queries = [q for q in read_queries(queries_csv)]
    with Retriever.open(bundle) as retriever:
        embedder, views = retriever.embedder, retriever.bundle.query_views
        assert views is not None, "the bundle must have query views"
        present = {item.group for item in retriever.bundle.catalog}
        queries = [q for q in queries if q.group in present]
        one, full, words = [], [], []
        card = retriever.bundle.card
        for query in queries:
            photo = decode_photos([query.image])[0]
            outputs = embedder.run_model(embedder.inputs(reduced(photo, embedder.decode_side)))
            pooled = srmac(outputs[card.outputs["features"]], outputs[card.outputs["saliency"]], embedder.levels)
            project = embedder.projection.apply if embedder.projection is not None else (lambda x: x)
            one.append(project(l2_normalize(pooled[:1]).astype(np.float32))[0])
            full.append(project(views.combine(pooled))[0])
            if retriever.reads_labels:
                box = product_box(outputs[card.outputs["saliency"]][0, 0], photo.size, card.input)
                words.append(retriever.reader.read(photo, box))
        one, full = np.stack(one), np.stack(full)
        read = words if retriever.reads_labels else None
        first = [m[0].confidence for m in retriever.search(one, words=read)]
        rows = []
        for threshold in thresholds:
            early = np.array([c is not None and c >= threshold for c in first])
            chosen = np.where(early[:, None], one, full)
            report = score(retriever, queries, chosen, read)
            rows.append({"threshold": threshold, "one_view_share": float(early.mean()), "map7": report["map7"],
                         "top1": report["top1"], "product_top1": report["products"]["top1"]})
    print(json.dumps({"bundle": str(bundle), "queries": str(queries_csv), "photos": len(queries), "rows": rows},
                     indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), tuple(float(t) for t in sys.argv[3:]) or THRESHOLDS)
