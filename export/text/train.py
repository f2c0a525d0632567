"""EAST training: seeded, resumable, CPU-feasible (frozen early backbone stages), GPU when present.

Each step's batch and augmentation are drawn from a generator seeded by (seed, step), so a resumed run
sees exactly the batches an uninterrupted one would have, without storing a sampler state.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from PIL import Image

from ..models.east import build_east
from ..train.checkpoint import CHECKPOINT, load_checkpoint, resume, save_checkpoint
from .labels import Sample, make_targets, read_samples
from .losses import east_loss

LOG = "train_log.jsonl"
#: EfficientNet-Lite convention, as the visual model's card says.
MEAN, STD = 127.0, 128.0


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 2000
    batch_size: int = 8
    size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-5
    freeze_stages: int = 2
    seed: int = 0
    checkpoint_every: int = 100
    log_every: int = 10
    min_crop: float = 0.6
    #: Share of each batch drawn from each data directory (in the order given); empty = by sample count.
    data_weights: tuple[float, ...] = ()
    #: Checkpoint whose model weights start the run (fine-tuning); the optimiser starts afresh.
    init: str = ""
    #: "dice" (the shipped model) or "balanced_ce" (the paper's class-balanced cross-entropy); see losses.py.
    score_loss: str = "dice"


def augment(sample: Sample, rng: np.random.Generator, size: int, min_crop: float) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A random square crop (min_crop..1 of the shorter side) resized to ``size``; targets follow the quads."""
    image = Image.open(sample.image).convert("RGB")
    width, height = image.size
    side = rng.uniform(min_crop, 1.0) * min(width, height)
    left = rng.uniform(0, width - side)
    top = rng.uniform(0, height - side)
    image = image.resize((size, size), Image.Resampling.BILINEAR, box=(left, top, left + side, top + side))
    scale = size / side
    quads = (np.asarray(sample.quads, dtype=np.float32).reshape(-1, 4, 2) - [left, top]) * scale
    ignore = np.asarray(sample.ignore, dtype=bool).reshape(-1)
    # A text cut by the crop border cannot be learnt as a whole box: ignore it rather than teach a wrong one.
    centres = quads.mean(axis=1)
    cut = (quads.min(axis=1) < -2).any(axis=1) | (quads.max(axis=1) > size + 2).any(axis=1)
    inside = ((centres >= 0) & (centres < size)).all(axis=1)
    quads, ignore = quads[inside], ignore[inside] | cut[inside]
    targets = make_targets(quads, ignore, size, size)
    pixels = (np.asarray(image, dtype=np.float32) - MEAN) / STD
    return pixels.transpose(2, 0, 1), targets


class Batches(torch.utils.data.IterableDataset):
    """Batches for steps ``start..steps-1``, each drawn from its own (seed, step) generator.

    Each item first picks a data directory by ``data_weights`` (so a small real-photo set can weigh as much
    as a large synthetic one), then a sample in it.
    """

    def __init__(self, groups: Sequence[Sequence[Sample]], config: TrainConfig, start: int, stop: int) -> None:
        self.groups = [list(group) for group in groups]
        weights = np.asarray(config.data_weights or [len(g) for g in self.groups], dtype=np.float64)
        if len(weights) != len(self.groups) or np.any(weights < 0) or weights.sum() <= 0:
            raise ValueError(f"need one non-negative weight per data directory, got {config.data_weights}")
        self.weights = weights / weights.sum()
        self.config = config
        self.start = start
        self.stop = stop

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        c = self.config
        for step in range(self.start, self.stop):
            rng = np.random.default_rng((c.seed, step))
            groups = rng.choice(len(self.groups), size=c.batch_size, p=self.weights)
            picks = [self.groups[g][rng.integers(len(self.groups[g]))] for g in groups]
            items = [augment(sample, rng, c.size, c.min_crop) for sample in picks]
            yield {
                "image": torch.from_numpy(np.stack([img for img, _ in items])),
                **{key: torch.from_numpy(np.stack([t[key] for _, t in items])) for key in ("score", "geometry", "mask")},
            }


def train(data_dirs: Sequence[Path], out: Path, config: TrainConfig = TrainConfig(), device: str | None = None,
          until: int | None = None) -> Path:
    """Train (or resume) EAST on the sample directories; returns the checkpoint path.

    ``until`` stops this call after that step (checkpointed), for time-boxed sessions; a later call resumes.
    """
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(config.seed)
    groups = [read_samples(Path(root)) for root in data_dirs]
    if not all(groups):
        raise ValueError("no training samples in " + ", ".join(str(r) for r, g in zip(data_dirs, groups) if not g))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model = build_east(freeze_stages=config.freeze_stages)
    if config.init:
        model.load_state_dict(load_checkpoint(config.init)["model"])
    model = model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=config.steps, pct_start=0.05)
    checkpoint = out / CHECKPOINT
    start = resume(checkpoint, asdict(config), device, model=model, optimizer=optimizer, schedule=schedule)
    loader = torch.utils.data.DataLoader(Batches(groups, config, start, min(until or config.steps, config.steps)), batch_size=None, num_workers=1,
                                         persistent_workers=False)
    model.train()
    started = time.perf_counter()
    with open(out / LOG, "a", encoding="utf-8") as log:
        for step, batch in enumerate(loader, start=start + 1):
            batch = {key: value.to(device) for key, value in batch.items()}
            score, geometry = model(batch["image"])
            loss, parts = east_loss(score, geometry, batch["score"], batch["geometry"], batch["mask"],
                                    score_loss=config.score_loss)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            if step % config.log_every == 0 or step == config.steps:
                log.write(json.dumps({"step": step, "seconds": round(time.perf_counter() - started, 1),
                                      "lr": schedule.get_last_lr()[0], **parts}) + "\n")
                log.flush()
            if step % config.checkpoint_every == 0 or step == config.steps or step == until:
                save_checkpoint(checkpoint, step, asdict(config), model=model, optimizer=optimizer, schedule=schedule)
    return checkpoint


def load_trained(checkpoint: Path) -> torch.nn.Module:
    """The trained EAST in eval mode, from a training checkpoint."""
    state = load_checkpoint(checkpoint)
    model = build_east(pretrained=False, freeze_stages=0)
    model.load_state_dict(state["model"])
    return model.eval()
