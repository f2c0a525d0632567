"""One query view that answers like three: distil the query zooms into the unseen-protocol model (an experiment).

The default query describes a photo three times (the photo, its 80 % and 64 % zooms, `runtime.describe.views`),
which lifts catalogue-only top-1 on unseen products from 0.532 to 0.638 but costs three model runs. Here a student
(this folder's model.onnx, blocks 11-15, head conv and saliency branch trainable) learns to give, from the photo
alone, the teacher's three-view descriptor (cosine loss on the SR-MAC descriptor, eqs. 4-7), and the teacher's own
one-view descriptor for catalogue images, so the catalogue side stays where it was. It sees exactly what the teacher
saw: the train-split photos and catalogue images of the 52 seen classes (train_catalog.csv), each also mirrored;
no photo of the 29 held-out classes and no val photo. Targets come from the runtime's own Embedder on ONNX Runtime.

Usage: python benchmarks/new_products/distill.py OUT_DIR [--steps N]   (writes OUT_DIR/student.onnx and a card;
score it with run.py --model OUT_DIR/student.onnx --build-arg=--query-views --build-arg=off)
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import ImageOps

from export.models.manet import InferenceGraph, srmac_pool
from export.onnx.manet import OUTPUTS, check_parity
from export.onnx.trunk import _export_bytes, write_model_files
from export.train.manet import ManetConfig, build_model
from runtime.backends import open_backend
from runtime.describe.embedder import Embedder
from runtime.describe.image import load_image, prepare
from runtime.describe.modelcard import ModelCard, card_path_for
from runtime.describe.views import QueryViews

HERE = Path(__file__).resolve().parent
TEACHER = HERE / "model.onnx"
TRAIN = HERE / "train_catalog.csv"
SPLIT = 11  # blocks before this stay frozen, as in the teacher's recipe


def training_images() -> tuple[list, list[bool]]:
    """Every training image and its mirror, decoded as a query is, and whether it is a catalogue image."""
    with open(TRAIN, encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    images, catalogue = [], []
    for row in rows:
        image = load_image(TRAIN.parent / row["image"], min_size=500)
        for view in (image, ImageOps.mirror(image)):
            images.append(view)
            catalogue.append("/train/" not in row["image"])
    return images, catalogue


def targets(images: list, catalogue: list[bool], card: ModelCard) -> np.ndarray:
    """The teacher's descriptors: three query views for a photo, one view for a catalogue image."""
    backend = open_backend(TEACHER, "onnxruntime", threads=2)
    one, three = Embedder(backend, card, 3), Embedder(backend, card, 3, views=QueryViews())
    out = np.zeros((len(images), card.feature_dim), dtype=np.float32)
    for i, (image, is_catalogue) in enumerate(zip(images, catalogue)):
        embedder = one if is_catalogue else three
        out[i] = embedder.embed_batch(embedder.inputs(image))[0]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(2)
    torch.manual_seed(0)
    card = ModelCard.load(card_path_for(TEACHER))
    started = time.perf_counter()
    images, catalogue = training_images()
    cache = args.out / "targets.npy"
    if cache.exists():
        wanted = np.load(cache)
    else:
        wanted = targets(images, catalogue, card)
        np.save(cache, wanted)
    print(f"{len(images)} images, targets in {time.perf_counter() - started:.0f} s", flush=True)
    config = ManetConfig(init_onnx=str(TEACHER), use_text=False, train_from_block=SPLIT, pool="srmac", head="cosine",
                         size=card.input.height)
    model = build_model(0, config)
    model.eval()  # BatchNorm statistics stay the teacher's (freeze_all_bn); no dropout without a classifier
    prefix_file = args.out / "prefix.npz"  # the frozen blocks' outputs: minutes on 2 cores, so kept for a rerun
    if prefix_file.exists():
        with np.load(prefix_file) as saved:
            prefix = {name: torch.from_numpy(saved[name]) for name in ("c8", "c16", "x", "t")}
    else:
        parts: dict[str, list[torch.Tensor]] = {"c8": [], "c16": [], "x": [], "t": []}
        with torch.no_grad():
            for start in range(0, len(images), 32):
                batch = torch.from_numpy(np.stack([prepare(im, card.input) for im in images[start:start + 32]]))
                for name, part in zip(parts, model.frozen_prefix(batch, SPLIT)):
                    parts[name].append(part.half() if name != "t" else part)
        prefix = {name: torch.cat(p) for name, p in parts.items()}
        np.savez(prefix_file, **{name: t.numpy() for name, t in prefix.items()})
    target = torch.from_numpy(wanted)
    with torch.no_grad():
        probe = torch.arange(0, len(images), 25)  # catalogue images and photos alike
        out = model.attend_from_prefix(*(prefix[n][probe].float() for n in ("c8", "c16", "x", "t")), SPLIT)
        start_cos = (srmac_pool(out.X_tilde, out.S) * target[probe]).sum(1)
    is_cat = torch.tensor(catalogue)
    print(f"prefix cached at {time.perf_counter() - started:.0f} s; start cosine to targets: catalogue "
          f"{start_cos[is_cat[probe]].mean():.4f}, photos {start_cos[~is_cat[probe]].mean():.4f}", flush=True)
    backbone = [p for p in model.backbone.parameters() if p.requires_grad]
    others = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("backbone.")]
    optimizer = torch.optim.AdamW([{"params": backbone, "lr": args.lr * 0.3}, {"params": others, "lr": args.lr}],
                                  weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=[args.lr * 0.3, args.lr], total_steps=args.steps,
                                                   pct_start=0.1)
    # catalogue images are 3 % of the set: drawn 8x as often, so the catalogue side is held in place
    weights = np.where(catalogue, 8.0, 1.0)
    weights /= weights.sum()
    rng = np.random.default_rng(0)
    with open(args.out / "log.jsonl", "a", encoding="utf-8") as log:
        for step in range(1, args.steps + 1):
            picks = torch.from_numpy(rng.choice(len(images), size=args.batch, p=weights))
            out = model.attend_from_prefix(*(prefix[n][picks].float() for n in ("c8", "c16", "x", "t")), SPLIT)
            cosine = (srmac_pool(out.X_tilde, out.S) * target[picks]).sum(1)
            loss = (1 - cosine).mean()
            cosine = cosine.detach()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            if step % 20 == 0 or step == args.steps:
                on_catalogue = is_cat[picks]
                record = {"step": step, "seconds": round(time.perf_counter() - started, 1),
                          "loss": round(loss.item(), 5),
                          "cos_catalogue": round(float(cosine[on_catalogue].mean()), 4) if on_catalogue.any() else None,
                          "cos_photos": round(float(cosine[~on_catalogue].mean()), 4)}
                log.write(json.dumps(record) + "\n")
                log.flush()
                print(record, flush=True)
    graph = InferenceGraph(model).eval()
    data = _export_bytes(graph, card.input.height, 17, OUTPUTS)
    parity = check_parity(graph, data, card.input.height)
    teacher_card = json.loads(card_path_for(TEACHER).read_text(encoding="utf-8"))
    student = dict(teacher_card, name="student", file="student.onnx", sha256=hashlib.sha256(data).hexdigest(),
                   parity=parity, metrics={},
                   distilled={"teacher": {"file": TEACHER.name, "sha256": teacher_card["sha256"]},
                              "target": "the teacher's SR-MAC of the photo + 0.5 x its 80 % and 64 % zooms (photos); "
                                        "its one-view descriptor (catalogue images)",
                              "images": len(images), "steps": args.steps, "lr": args.lr, "batch": args.batch,
                              "trained": f"blocks {SPLIT}-15, head conv, saliency branch"})
    write_model_files(args.out, "student", data, student, f"# student\n\nSee {Path(__file__).name}.\n")
    print(f"wrote {args.out / 'student.onnx'} at {time.perf_counter() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
