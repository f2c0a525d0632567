"""Which parts of MANet lose accuracy in INT8: each variant keeps one part in float32 (or changes the weight range),
is quantised as `shadematch quantize` does, and is scored against the float32 model on the same photos.

Scores per variant: the mean and 5th-percentile cosine of the SR-MAC descriptors to float32's on val photos, the
raw catalogue-only top-1 (val photos against the 81 catalogue images, one view each, no adaptation: a proxy of
the protocol's ranking), and the visual model's batch-3 time (a query with two zooms). Seen products (the shipped
model saw every class); tuning on val only.

Usage: python benchmarks/int8/sensitivity.py --model engines/manet_lite0.onnx --work /work/np/int8
           --calibration CSV --catalog ICONIC_CSV --queries VAL_QUERIES_CSV [--variants NAME ...]
"""
from __future__ import annotations

import argparse
import csv
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx

from export.engine.precision import CPU_QDQ, calibration_images, quantize_qdq
from runtime.backends import open_backend
from runtime.describe.image import load_and_prepare
from runtime.describe.modelcard import ModelCard, card_path_for
from runtime.describe.pooling import l2_normalize, srmac

LEVELS = 3


def node_groups(model: onnx.ModelProto) -> dict[str, list[str]]:
    """Named spans of MANet's graph (in its topological order): the trunk's stem and blocks, the text branch (from
    the resize of the image to T), the saliency branch (to S) and the tail that makes X from them (eqs. 2-3)."""
    nodes = list(model.graph.node)
    produced = {out: i for i, n in enumerate(nodes) for out in n.output}
    text_end = produced["T"]
    # a model without the text branch (T := 1, benchmarks/new_products) makes T from a constant, with no resize
    text_start = next((i for i, n in enumerate(nodes) if n.op_type == "Resize" and n.input[0] == "image"), text_end)
    saliency_end = produced["S"]
    trunk = [n.name for n in nodes[:text_start]]
    groups = {"stem": trunk[:2]}
    convs = [i for i, n in enumerate(nodes[:text_start]) if n.op_type == "Conv"][1:]
    step = 8
    for start in range(0, len(convs), step):
        lo = convs[start]
        hi = convs[start + step] if start + step < len(convs) else text_start
        groups[f"trunk {start + 1}-{min(start + step, len(convs))}"] = [n.name for n in nodes[lo:hi]]
    if text_start < text_end:
        groups["text branch"] = [n.name for n in nodes[text_start:text_end + 1]]
    groups["head + saliency branch"] = [n.name for n in nodes[text_end + 1:saliency_end + 1]]
    groups["tail"] = [n.name for n in nodes[saliency_end + 1:]]
    return groups


def describe(model: Path, card: ModelCard, batch: np.ndarray) -> np.ndarray:
    backend = open_backend(model, "onnxruntime", threads=2)
    try:
        out = [backend.run({card.input.name: batch[i:i + 16]}) for i in range(0, len(batch), 16)]
        X = np.concatenate([o[card.outputs["features"]] for o in out])
        S = np.concatenate([o[card.outputs["saliency"]] for o in out])
        times = []
        for _ in range(12):
            started = time.perf_counter()
            backend.run({card.input.name: batch[:3]})
            times.append(time.perf_counter() - started)
        return l2_normalize(srmac(X, S, LEVELS)), float(np.median(times) * 1000)
    finally:
        backend.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--calibration", type=Path, required=True)
    parser.add_argument("--catalog", type=Path, required=True)
    parser.add_argument("--queries", type=Path, required=True)
    parser.add_argument("--queries-count", type=int, default=160)
    parser.add_argument("--variants", nargs="*", default=None)
    parser.add_argument("--report", type=Path, default=None)
    args = parser.parse_args()
    card = ModelCard.load(card_path_for(args.model))
    model = onnx.load(str(args.model))
    groups = node_groups(model)
    catalog = list(csv.DictReader(open(args.catalog)))
    queries = list(csv.DictReader(open(args.queries)))
    picked = np.random.default_rng(0).choice(len(queries), size=min(args.queries_count, len(queries)), replace=False)
    queries = [queries[i] for i in sorted(picked)]
    images = [row["image"] for row in catalog] + [row["image"] for row in queries]
    batch = np.stack([load_and_prepare(image, card.input) for image in images])
    groups_of_catalog = np.array([row["group"] for row in catalog])
    truth = np.array([row["group"] for row in queries])
    calibration = calibration_images(args.calibration, 64)

    def score(descriptors: np.ndarray, reference: np.ndarray | None) -> dict:
        gallery, probe = descriptors[: len(catalog)], descriptors[len(catalog):]
        top1 = float(np.mean(groups_of_catalog[(probe @ gallery.T).argmax(1)] == truth))
        result = {"raw catalogue-only top-1": round(top1, 4)}
        if reference is not None:
            cos = np.sum(descriptors * reference, axis=1)
            result.update({"cosine mean": round(float(cos.mean()), 4), "cosine p5": round(float(np.percentile(cos, 5)), 4)})
        return result

    reference, fp32_ms = describe(args.model, card, batch)
    rows = {"float32": {**score(reference, None), "batch-3 ms": round(fp32_ms, 2)}}
    print("float32", rows["float32"], flush=True)
    variants: dict[str, tuple[list[str], bool]] = {"INT8 (shipped form)": ([], True), "INT8, 8-bit weights": ([], False)}
    for name, nodes in groups.items():
        variants[f"INT8, {name} in float32"] = (nodes, True)
    variants["INT8, 8-bit weights, tail + saliency branch in float32"] = (groups["tail"] + groups["head + saliency branch"], False)
    variants["INT8, 8-bit weights, tail + stem in float32"] = (groups["tail"] + groups["stem"], False)
    for name, (exclude, reduce_range) in variants.items():
        if args.variants and not any(v in name for v in args.variants):
            continue
        form = replace(CPU_QDQ, reduce_range=reduce_range)
        out = args.work / f"{abs(hash(name)) % 10**8}.onnx"
        quantize_qdq(args.model, out, card, calibration, "minmax", form=form, exclude=exclude)
        descriptors, ms = describe(out, card, batch)
        rows[name] = {**score(descriptors, reference), "batch-3 ms": round(ms, 2), "float32 nodes": len(exclude)}
        print(name, rows[name], flush=True)
        out.unlink()
    if args.report:
        args.report.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
