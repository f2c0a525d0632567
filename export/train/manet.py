"""MANet training (Wang et al., Sci China Inf Sci 2020): classification + lambda * Dice (eq. 1) on pseudo-saliency masks.

Pseudo masks, and why: no saliency labels exist for a shop's catalogue.
- Clean catalogue images (product on a plain background) are pasted into store-like scenes by
  ``augment.store_like``; the product's cut-out mask travels with the same warp, so their mask is exact.
- Real photos get the channel energy of the frozen ImageNet trunk's last-conv features (objects light up, the
  shelf does not), computed once per photo on the unaugmented image and warped with each augmentation.
Both are pooled to the feature grid and binarised at their mean, as eq. 1 prescribes.

Two ways to feed it. Cached views (the default): a fixed set of augmented views per image, each run once through
the frozen prefix, which makes training cheap on a CPU. Fresh views (``fresh_views``): every step draws new
augmented views and runs the frozen prefix on them, so the model never sees the same view twice: slower per step,
but deeper training no longer memorises a handful of views. Views and batches are drawn from generators seeded by
(seed, image, view), (seed, step) and (seed, step, slot): reproducible, and a resumed run sees the batches an
uninterrupted one would have.

A run can start from a shipped MANet ONNX file (``init_onnx``), and the frozen text branch can come from the
shipped EAST ONNX file (``east_checkpoint`` ending in .onnx): `export.models.from_onnx` unfolds their weights.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from runtime.describe.image import load_image

from ..bundle.catalog import CatalogRow
from ..models.east import build_east
from ..models.efficientnet_lite import VisualTrunk, load_imagenet_lite0
from ..models.from_onnx import load_folded, onnx_weights
from ..models.manet import COSINE_SCALE, MANet, srmac_pool
from ..text.train import load_trained
from .augment import photo_augment, store_like
from .checkpoint import CHECKPOINT, load_checkpoint, resume, save_checkpoint
from .losses import cross_domain_loss, dice_loss, margin_logits
from .prefix import OnnxPrefix
from .saliency import channel_energy, foreground_mask, pseudo_mask_from_product_mask

LOG = "train_log.jsonl"
MEAN, STD = 127.0, 128.0
#: A catalogue image has a plain border: this share of its border pixels within this distance of the median.
PLAIN_BORDER_SHARE = 0.8
PLAIN_TOLERANCE = 16


@dataclass(frozen=True)
class ManetConfig:
    steps: int = 1500
    batch_size: int = 32
    size: int = 256
    lr: float = 1e-3
    backbone_lr_scale: float = 0.1
    weight_decay: float = 1e-4
    lambda_dice: float = 0.5
    #: Augmented views cached per photo, and per clean catalogue cut-out (few of those, each made to look like
    #: many different store photos).
    views: int = 2
    catalogue_views: int = 16
    #: Backbone blocks before this one are frozen (and cached per view); Lite0 has 16 blocks, 15 is the last.
    train_from_block: int = 15
    #: New augmented views every step instead of a cache (see the module docstring).
    fresh_views: bool = False
    #: A shipped MANet ONNX file to start from (backbone and saliency branch); "" = ImageNet backbone.
    init_onnx: str = ""
    use_saliency: bool = True
    use_text: bool = True
    east_checkpoint: str = ""
    #: EAST's input scale (MANet ``text_scale``); the training head's pooling and kind (MANet ``pool``, ``head``).
    text_scale: float = 1.0
    pool: str = "avg"
    head: str = "linear"
    label_smoothing: float = 0.0
    #: Additive cosine margin on the cosine head's own-class logit (`losses.margin_logits`); 0 = plain softmax.
    margin: float = 0.0
    #: Weight of the cross-domain loss (`losses.cross_domain_loss`) on paired batches: half the batch is one
    #: catalogue view per product, half a store photo of the same products. 0 = batches drawn as the cache would.
    cross_domain: float = 0.0
    seed: int = 0
    checkpoint_every: int = 50
    log_every: int = 10


#: Config fields added after runs were checkpointed, with the value those runs had: they still resume.
ADDED_FIELDS = {"margin": 0.0, "cross_domain": 0.0}


@dataclass
class Example:
    """A decoded training image, its class and its full-resolution pseudo-saliency source."""

    pixels: np.ndarray  # H x W x 3 uint8
    label: int
    catalogue: bool
    mask: np.ndarray  # H x W float32: exact product mask (catalogue) or ImageNet channel energy (photo)


def is_catalogue_image(pixels: np.ndarray) -> bool:
    """Mostly plain border, as catalogue cut-outs have (the product may touch an edge) and store photos do not."""
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]]).astype(np.int16)
    plain = np.all(np.abs(border - np.median(border, axis=0)) <= PLAIN_TOLERANCE, axis=1)
    return float(plain.mean()) >= PLAIN_BORDER_SHARE


def load_examples(rows: Sequence[CatalogRow], labels: Sequence[int], max_side: int) -> list[Example]:
    """Decode every row once (kept small in memory) and make its pseudo-saliency source."""
    trunk = VisualTrunk(load_imagenet_lite0()).eval()
    examples = []
    for row, label in zip(rows, labels):
        if label < 0:
            continue
        image = load_image(row.image)
        image.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
        pixels = np.asarray(image, dtype=np.uint8)
        if is_catalogue_image(pixels):
            examples.append(Example(pixels, label, True, foreground_mask(pixels)))
        else:
            examples.append(Example(pixels, label, False, _energy(trunk, pixels)))
    return examples


@torch.no_grad()
def _energy(trunk: VisualTrunk, pixels: np.ndarray) -> np.ndarray:
    x = torch.from_numpy((pixels.astype(np.float32) - MEAN) / STD).permute(2, 0, 1)[None]
    x = F.interpolate(x, size=(320, 320), mode="bilinear", align_corners=False)
    features, _ = trunk(x)
    energy = channel_energy(features)
    return F.interpolate(energy, size=pixels.shape[:2], mode="bilinear", align_corners=False)[0, 0].numpy()


def augmented_view(example: Example, photos: Sequence[Example], rng: np.random.Generator,
                   config: ManetConfig) -> tuple[np.ndarray, np.ndarray]:
    """One store-like view of a catalogue cut-out (exact mask) or an augmented real photo (energy mask).

    On paired batches (``cross_domain``) half the catalogue views are the cut-out as the gallery holds it (mildly
    cropped and jittered, on its own backdrop): the cross-domain loss then pulls a store photo towards the very
    picture a catalogue-only bundle indexes."""
    if example.catalogue and config.cross_domain and rng.random() < 0.5:
        return photo_augment(example.pixels, example.mask, rng, config.size)
    if example.catalogue:
        background = photos[rng.integers(len(photos))].pixels if photos and rng.random() < 0.5 else None
        return store_like(example.pixels, example.mask, rng, config.size, background=background)
    return photo_augment(example.pixels, example.mask, rng, config.size)


def view_batch(views: Sequence[tuple[Example, np.random.Generator]], photos: Sequence[Example], config: ManetConfig,
               device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """One augmented view per (example, generator): the normalised image batch (N, 3, H, W) and its pseudo masks on
    the feature grid (eq. 1's targets). The one recipe for cached and fresh views."""
    grid = (config.size // 32, config.size // 32)
    images, masks = [], []
    for example, rng in views:
        image, mask = augmented_view(example, photos, rng, config)
        images.append((image.astype(np.float32) - MEAN) / STD)
        masks.append(pseudo_mask_from_product_mask(mask, grid))
    batch = torch.from_numpy(np.ascontiguousarray(np.stack(images).transpose(0, 3, 1, 2))).to(device)
    return batch, torch.cat(masks)


@dataclass
class CachedViews:
    """Frozen-prefix outputs of augmented views (MANet.frozen_prefix), their pseudo masks and labels."""

    c8: torch.Tensor  # float16
    c16: torch.Tensor  # float16
    x: torch.Tensor  # float16, the input of the first trained block
    t_prob: torch.Tensor
    mask: torch.Tensor
    label: torch.Tensor

    def __len__(self) -> int:
        return len(self.label)


@torch.no_grad()
def cache_views(model: MANet, examples: Sequence[Example], config: ManetConfig, device: str) -> CachedViews:
    """Augment every image ``views`` times (catalogue cut-outs ``catalogue_views`` times) and run the frozen
    prefix once per view.

    On a CPU the frozen backbone stages and the frozen EAST are most of the cost of a training step; running them
    once per view instead of once per step makes MANet trainable here, at the price of a fixed set of views.
    """
    photos = [e for e in examples if not e.catalogue]
    jobs = [(i, v) for i, e in enumerate(examples) for v in range(config.catalogue_views if e.catalogue else config.views)]
    parts: dict[str, list[torch.Tensor]] = {k: [] for k in ("c8", "c16", "x", "t_prob", "mask", "label")}
    model.eval()
    for start in range(0, len(jobs), 32):
        chunk = jobs[start : start + 32]
        batch, masks = view_batch([(examples[i], np.random.default_rng((config.seed, i, v))) for i, v in chunk],
                                  photos, config, device)
        labels = [examples[i].label for i, _ in chunk]
        c8, c16, x, t_prob = model.frozen_prefix(batch, config.train_from_block)
        parts["c8"].append(c8.half().cpu())
        parts["c16"].append(c16.half().cpu())
        parts["x"].append(x.half().cpu())
        parts["t_prob"].append(t_prob.cpu())
        parts["mask"].append(masks)
        parts["label"].append(torch.tensor(labels))
    return CachedViews(**{k: torch.cat(v) for k, v in parts.items()})


def load_east(path: Path) -> torch.nn.Module:
    """The frozen text branch: a training checkpoint, or the shipped EAST ONNX file (weights unfolded)."""
    if path.suffix != ".onnx":
        return load_trained(path)
    east = build_east(pretrained=False)
    load_folded(east, onnx_weights(path), "", torch.zeros(1, 3, 64, 64))
    return east.eval()


def build_model(num_classes: int, config: ManetConfig, pretrained: bool = True) -> MANet:
    """MANet with backbone blocks [0, train_from_block) frozen (what ``frozen_prefix`` computes); started from
    ``config.init_onnx`` when given (and ``pretrained``: a checkpoint's weights replace them anyway)."""
    east = load_east(Path(config.east_checkpoint)) if config.use_text else None
    model = MANet(num_classes, east, use_saliency=config.use_saliency, use_text=config.use_text,
                  pretrained=pretrained and not config.init_onnx, pool=config.pool, head=config.head,
                  text_scale=config.text_scale, freeze_all_bn=bool(config.init_onnx))
    if config.init_onnx and pretrained:
        load_folded(model, onnx_weights(Path(config.init_onnx)), "manet.", torch.zeros(1, 3, config.size, config.size),
                    skip=("east", "classifier", "gem"))
    trunk = model.backbone
    for module in (trunk._conv_stem, trunk._bn0, *trunk._blocks[: config.train_from_block]):
        module.requires_grad_(False)
    return model


def train_manet(examples: Sequence[Example], num_classes: int, out: Path, config: ManetConfig,
                device: str | None = None, until: int | None = None) -> Path:
    """Train (or resume) MANet on cached views; returns the checkpoint path. ``until`` stops early (checkpointed)."""
    if config.margin and config.head != "cosine":
        raise ValueError(f"a margin of {config.margin} needs the cosine head, got head {config.head!r}")
    if config.cross_domain and not (config.fresh_views and config.pool == "srmac"):
        raise ValueError("the cross-domain loss needs fresh views and the srmac pooling (it pairs new views of the "
                         "indexed descriptor)")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(config.seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model = build_model(num_classes, config).to(device)
    backbone = [p for p in model.backbone.parameters() if p.requires_grad]
    others = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("backbone.")]
    optimizer = torch.optim.AdamW([{"params": backbone, "lr": config.lr * config.backbone_lr_scale},
                                   {"params": others, "lr": config.lr}], weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=[config.lr * config.backbone_lr_scale, config.lr], total_steps=config.steps, pct_start=0.1)
    checkpoint = out / CHECKPOINT
    state = {"num_classes": num_classes, **asdict(config)}
    start = resume(checkpoint, state, device, defaults=ADDED_FIELDS, model=model, optimizer=optimizer, schedule=schedule)
    stop = min(until or config.steps, config.steps)
    started = time.perf_counter()
    batches = FreshViews(model, examples, config, device) if config.fresh_views else CachedBatches(
        cache_views(model, examples, config, device), config, device)
    with open(out / LOG, "a", encoding="utf-8") as log:
        log.write(json.dumps({batches.kind: batches.size, "seconds": round(time.perf_counter() - started, 1)}) + "\n")
        model.train()
        for step in range(start + 1, stop + 1):
            torch.manual_seed(config.seed * 1_000_003 + step)  # dropout as in an uninterrupted run, also after a resume
            prefix, masks, labels = batches.batch(step)
            output = model.forward_from_prefix(*prefix, config.train_from_block)
            logits = margin_logits(output.logits, labels, config.margin, COSINE_SCALE)
            l_cls = F.cross_entropy(logits, labels, label_smoothing=config.label_smoothing)
            l_dice = dice_loss(output.S, masks) if config.use_saliency else torch.zeros((), device=device)
            l_cross = (cross_domain_loss(srmac_pool(output.X_tilde, output.S), COSINE_SCALE) if config.cross_domain
                       else torch.zeros((), device=device))
            loss = l_cls + config.lambda_dice * l_dice + config.cross_domain * l_cross  # classification + lambda * eq. 1
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            if step % config.log_every == 0 or step == stop:
                accuracy = float((output.logits.argmax(1) == labels).float().mean())
                log.write(json.dumps({"step": step, "seconds": round(time.perf_counter() - started, 1),
                                      "classification": round(l_cls.item(), 4), "dice": round(l_dice.item(), 4),
                                      **({"cross_domain": round(l_cross.item(), 4)} if config.cross_domain else {}),
                                      "batch_accuracy": round(accuracy, 3)}) + "\n")
                log.flush()
            if step % config.checkpoint_every == 0 or step == stop:
                save_checkpoint(checkpoint, step, state, model=model, optimizer=optimizer, schedule=schedule)
    return checkpoint


Prefix = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


class CachedBatches:
    """Batches drawn from cached views: step -> (frozen-prefix outputs, pseudo masks, labels)."""

    kind = "cached_views"

    def __init__(self, views: CachedViews, config: ManetConfig, device: str) -> None:
        self.views, self.config, self.device = views, config, device
        self.size = len(views)

    def batch(self, step: int) -> tuple[Prefix, torch.Tensor, torch.Tensor]:
        v, device = self.views, self.device
        picks = torch.from_numpy(np.random.default_rng((self.config.seed, step)).integers(len(v), size=self.config.batch_size))
        prefix = (v.c8[picks].float().to(device), v.c16[picks].float().to(device), v.x[picks].float().to(device),
                  v.t_prob[picks].to(device))
        return prefix, v.mask[picks].to(device), v.label[picks].to(device)


class FreshViews:
    """Batches of new augmented views every step, run through the frozen prefix (on ONNX Runtime when training on
    the CPU: `export.train.prefix`); images are drawn in the cache's proportions (a catalogue cut-out
    ``catalogue_views / views`` times as often as a photo), or, with ``cross_domain``, as pairs (`paired_picks`)."""

    kind = "fresh_views_from_images"

    def __init__(self, model: MANet, examples: Sequence[Example], config: ManetConfig, device: str) -> None:
        self.model, self.examples, self.config, self.device = model, examples, config, device
        self.photos = [e for e in examples if not e.catalogue]
        weights = np.array([config.catalogue_views / config.views if e.catalogue else 1.0 for e in examples])
        self.weights = weights / weights.sum()
        self.size = len(examples)
        self.pairs = pairable(examples) if config.cross_domain else {}
        if config.cross_domain and (len(self.pairs) < 2 or config.batch_size % 2):
            raise ValueError(f"paired batches need an even batch size and two classes with a catalogue image and a "
                             f"photo each; got batch size {config.batch_size}, {len(self.pairs)} such classes")
        self.prefix = (OnnxPrefix(model, config.train_from_block, config.size) if device == "cpu"
                       else lambda image: model.frozen_prefix(image, config.train_from_block))

    def batch(self, step: int) -> tuple[Prefix, torch.Tensor, torch.Tensor]:
        cfg = self.config
        rng = np.random.default_rng((cfg.seed, step))
        picks = (paired_picks(self.pairs, cfg.batch_size // 2, rng) if self.pairs
                 else rng.choice(len(self.examples), size=cfg.batch_size, p=self.weights))
        views = [(self.examples[i], np.random.default_rng((cfg.seed, step, slot))) for slot, i in enumerate(picks)]
        batch, masks = view_batch(views, self.photos, cfg, self.device)
        with torch.no_grad():
            prefix = self.prefix(batch)
        labels = torch.tensor([self.examples[i].label for i in picks], device=self.device)
        return prefix, masks.to(self.device), labels


def pairable(examples: Sequence[Example]) -> dict[int, tuple[list[int], list[int]]]:
    """{class: (its catalogue examples, its photo examples)} for the classes that have both."""
    by_class: dict[int, tuple[list[int], list[int]]] = {}
    for i, example in enumerate(examples):
        by_class.setdefault(example.label, ([], []))[0 if example.catalogue else 1].append(i)
    return {label: kinds for label, kinds in by_class.items() if kinds[0] and kinds[1]}


def paired_picks(pairs: dict[int, tuple[list[int], list[int]]], products: int,
                 rng: np.random.Generator) -> np.ndarray:
    """Example indices of a paired batch: a catalogue image of each of ``products`` distinct classes (drawn with
    replacement only when there are fewer classes), then a photo of each, in the same order (what
    `losses.cross_domain_loss` expects)."""
    labels = sorted(pairs)
    chosen = rng.choice(labels, size=products, replace=products > len(labels))
    catalogue = [pairs[c][0][rng.integers(len(pairs[c][0]))] for c in chosen]
    photos = [pairs[c][1][rng.integers(len(pairs[c][1]))] for c in chosen]
    return np.array(catalogue + photos)


def load_manet(checkpoint: Path) -> MANet:
    """The trained MANet (eval mode) from a training checkpoint."""
    state = load_checkpoint(checkpoint)
    config = ManetConfig(**{k: v for k, v in state["config"].items() if k != "num_classes"})
    model = build_model(state["config"]["num_classes"], config, pretrained=False)
    model.load_state_dict(state["model"])
    return model.eval()
