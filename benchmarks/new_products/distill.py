"""One query view that answers like three: distil the query zooms into the unseen-protocol model (an experiment).

The default query describes a photo three times (the photo, its 80 % and 64 % zooms, `runtime.describe.views`),
which lifts catalogue-only top-1 on unseen products from 0.532 to 0.638 but costs three model runs. Here a student
(this folder's model.onnx, blocks 11-15, head conv and saliency branch trainable) learns to give, from the photo
alone, the teacher's three-view descriptor (cosine loss on the SR-MAC descriptor, eqs. 4-7), and the teacher's own
one-view descriptor for catalogue images, so the catalogue side stays where it was. It sees exactly what the teacher
saw: the train-split photos and catalogue images of the 52 seen classes (train_catalog.csv), each also mirrored;
no photo of the 29 held-out classes and no val photo. Targets come from the runtime's own Embedder on ONNX Runtime.

With ``--augment N`` each photo also gives N jittered copies (a random crop of 65-100 % of its area, mirror,
brightness, contrast and colour within 25 %), each with the teacher's three-view descriptor of that copy: more
distinct targets than 2 x 1,638 fixed photos (measured with N = 1: in-store unseen mAP@7 up, catalogue-only unseen
top-1 unchanged; README).

Usage: python benchmarks/new_products/distill.py OUT_DIR [--steps N] [--augment N]   (writes OUT_DIR/student.onnx
and a card; score it with run.py --model OUT_DIR/student.onnx --build-arg=--query-views --build-arg=off)
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageEnhance, ImageOps

from export.models.manet import InferenceGraph, srmac_pool
from export.onnx.manet import OUTPUTS, check_parity
from export.onnx.trunk import _export_bytes, write_model_files
from export.train.manet import ManetConfig, build_model
from runtime.backends import open_backend
from runtime.describe.embedder import Embedder
from runtime.describe.image import load_image
from runtime.describe.modelcard import ModelCard, card_path_for
from runtime.describe.views import QueryViews

HERE = Path(__file__).resolve().parent
TEACHER = HERE / "model.onnx"
TRAIN = HERE / "train_catalog.csv"
SPLIT = 11  # blocks before this stay frozen, as in the teacher's recipe
#: The frozen blocks' outputs that attend_from_prefix takes, in its order.
PREFIX_PARTS = ("c8", "c16", "x", "t")


def jitter(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A shopper's other shot of the same photo: a random crop of 65-100 % of its area (aspect within 20 %), maybe
    mirrored, brightness, contrast and colour each scaled within 25 %. Not train.augment.photo_augment: that warps
    to a model-sized square, and the teacher's zooms must come from the photo's own pixels, as a query's do."""
    area = rng.uniform(0.65, 1.0)
    aspect = np.exp(rng.uniform(np.log(0.8), np.log(1.25)))
    w = min(image.width, int(round(image.width * np.sqrt(area * aspect))))
    h = min(image.height, int(round(image.height * np.sqrt(area / aspect))))
    x, y = int(rng.integers(0, image.width - w + 1)), int(rng.integers(0, image.height - h + 1))
    out = image.crop((x, y, x + w, y + h))
    if rng.random() < 0.5:
        out = ImageOps.mirror(out)
    for enhance in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
        out = enhance(out).enhance(float(rng.uniform(0.75, 1.25)))
    return out


def training_rows() -> list[tuple[Path, bool]]:
    """(image path, whether it is a catalogue image) of every training image."""
    with open(TRAIN, encoding="utf-8") as handle:
        return [(TRAIN.parent / row["image"], "/train/" not in row["image"]) for row in csv.DictReader(handle)]


def training_images(rows: list[tuple[Path, bool]], augment: int, seed: int = 0
                    ) -> Iterator[tuple[Image.Image, bool]]:
    """Every training image and its mirror, decoded as a query is, then ``augment`` jittered copies of each photo:
    (image, is_catalogue) one at a time, so the copies never sit in memory together."""
    rng = np.random.default_rng(seed)
    for path, is_catalogue in rows:
        image = load_image(path, min_size=500)
        for view in (image, ImageOps.mirror(image)):
            yield view, is_catalogue
        for _ in range(0 if is_catalogue else augment):
            yield jitter(image, rng), False


def features(samples: Iterable[tuple[Image.Image, bool]], card: ModelCard, model: torch.nn.Module, chunk: int = 32
             ) -> tuple[np.ndarray, dict[str, torch.Tensor], list[bool]]:
    """The teacher's descriptors (three query views for a photo, one view for a catalogue image, from the runtime's
    Embedder), the frozen blocks' outputs of each image (half precision but T) and which are catalogue images."""
    backend = open_backend(TEACHER, "onnxruntime", threads=2)
    one, three = Embedder(backend, card, 3), Embedder(backend, card, 3, views=QueryViews())
    wanted: list[np.ndarray] = []
    parts: dict[str, list[torch.Tensor]] = {name: [] for name in PREFIX_PARTS}
    catalogue: list[bool] = []

    def flush(inputs: list[np.ndarray]) -> None:
        batch = torch.from_numpy(np.stack(inputs))
        with torch.no_grad():
            for name, part in zip(parts, model.frozen_prefix(batch, SPLIT)):
                parts[name].append(part.half() if name != "t" else part)

    pending: list[np.ndarray] = []
    for image, is_catalogue in samples:
        embedder = one if is_catalogue else three
        inputs = embedder.inputs(image)  # the photo's own view first: the student's input too
        wanted.append(embedder.embed_batch(inputs)[0])
        catalogue.append(is_catalogue)
        pending.append(inputs[0])
        if len(pending) == chunk:
            flush(pending)
            pending = []
            if len(catalogue) % (chunk * 20) == 0:
                print(f"{len(catalogue)} images described", flush=True)
    if pending:
        flush(pending)
    backend.close()
    return np.stack(wanted), {name: torch.cat(p) for name, p in parts.items()}, catalogue


def student_descriptors(model: torch.nn.Module, prefix: dict[str, torch.Tensor], rows: torch.Tensor) -> torch.Tensor:
    """The student's SR-MAC descriptors (eqs. 4-7) of the chosen rows, from their cached frozen-prefix outputs."""
    out = model.attend_from_prefix(*(prefix[name][rows].float() for name in PREFIX_PARTS), SPLIT)
    return srmac_pool(out.X_tilde, out.S)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--augment", type=int, default=0, help="jittered copies of each photo (default 0)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(2)
    torch.manual_seed(0)
    card = ModelCard.load(card_path_for(TEACHER))
    started = time.perf_counter()
    config = ManetConfig(init_onnx=str(TEACHER), use_text=False, train_from_block=SPLIT, pool="srmac", head="cosine",
                         size=card.input.height)
    model = build_model(0, config)
    model.eval()  # BatchNorm statistics stay the teacher's (freeze_all_bn); no dropout without a classifier
    cache = args.out / "features.npz"  # targets and the frozen blocks' outputs: minutes on 2 cores, kept for a rerun
    if cache.exists():
        with np.load(cache) as saved:
            wanted, catalogue = saved["targets"], saved["catalogue"].tolist()
            prefix = {name: torch.from_numpy(saved[name]) for name in PREFIX_PARTS}
    else:
        wanted, prefix, catalogue = features(training_images(training_rows(), args.augment), card, model)
        np.savez(cache, targets=wanted, catalogue=np.array(catalogue),
                 **{name: t.numpy() for name, t in prefix.items()})
    count = len(wanted)
    print(f"{count} images, targets and prefix in {time.perf_counter() - started:.0f} s", flush=True)
    target = torch.from_numpy(wanted)
    with torch.no_grad():
        probe = torch.arange(0, count, 25)  # catalogue images and photos alike
        start_cos = (student_descriptors(model, prefix, probe) * target[probe]).sum(1)
    is_cat = torch.tensor(catalogue)
    print(f"prefix cached at {time.perf_counter() - started:.0f} s; start cosine to targets: catalogue "
          f"{start_cos[is_cat[probe]].mean():.4f}, photos {start_cos[~is_cat[probe]].mean():.4f}", flush=True)
    backbone = [p for p in model.backbone.parameters() if p.requires_grad]
    others = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("backbone.")]
    optimizer = torch.optim.AdamW([{"params": backbone, "lr": args.lr * 0.3}, {"params": others, "lr": args.lr}],
                                  weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=[args.lr * 0.3, args.lr], total_steps=args.steps,
                                                   pct_start=0.1)
    # catalogue images are a few % of the set: drawn 8x as often, so the catalogue side is held in place
    weights = np.where(catalogue, 8.0, 1.0)
    weights /= weights.sum()
    rng = np.random.default_rng(0)
    with open(args.out / "log.jsonl", "a", encoding="utf-8") as log:
        for step in range(1, args.steps + 1):
            picks = torch.from_numpy(rng.choice(count, size=args.batch, p=weights))
            cosine = (student_descriptors(model, prefix, picks) * target[picks]).sum(1)
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
                              "images": count, "augment": args.augment, "steps": args.steps, "lr": args.lr,
                              "batch": args.batch,
                              "trained": f"blocks {SPLIT}-15, head conv, saliency branch"})
    write_model_files(args.out, "student", data, student, f"# student\n\nSee {Path(__file__).name}.\n")
    print(f"wrote {args.out / 'student.onnx'} at {time.perf_counter() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
