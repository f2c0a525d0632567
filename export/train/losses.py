"""Losses of MANet's training (Wang et al., Sci China Inf Sci 2020).

Eq. 1 trains the saliency branch f(., Theta) against binary pseudo-saliency masks Y_i:

    L_S = 1 - sum_i 2 |f(X_i, Theta) n Y_i| / (|f(X_i, Theta)| + |Y_i|)

read, as the Dice loss it is, per image and averaged over the batch (the literal sum over i would go below zero
for N > 1): |A n B| is the soft intersection sum(f * Y) and |A| the sum of A's values.
"""
from __future__ import annotations

import torch

from runtime.describe.pooling import MEAN_SLACK

__all__ = ["dice_loss", "binarise_at_mean", "margin_logits", "cross_domain_loss"]


def dice_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Eq. 1: mean over the batch of 1 - 2 sum(pred * target) / (sum(pred) + sum(target)), a scalar.

    ``pred`` (the saliency S, values in [0, 1]) and ``target`` (the pseudo mask Y) have the same shape
    (N, ...). An image whose prediction and target are both empty counts as a perfect match (loss 0) rather than
    0 / 0.
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have one shape, got {tuple(pred.shape)} and {tuple(target.shape)}")
    p = pred.reshape(pred.shape[0], -1)
    y = target.reshape(target.shape[0], -1).to(p.dtype)
    intersection = (p * y).sum(dim=1)  # |f(X_i) n Y_i|, soft
    total = p.sum(dim=1) + y.sum(dim=1)  # |f(X_i)| + |Y_i|
    dice = torch.where(total > 0, 2.0 * intersection / total.clamp(min=torch.finfo(p.dtype).tiny),
                       torch.ones_like(total))
    return (1.0 - dice).mean()


def binarise_at_mean(mask: torch.Tensor) -> torch.Tensor:
    """Eq. 1's pseudo masks: 1 where the mask is at or above its own per-image mean, else 0.

    ``mask`` is (N, ...); the mean is taken over everything but the batch axis. A constant map becomes all ones
    (as the runtime's `saliency_region` treats a constant S: salient everywhere).
    """
    flat = mask.reshape(mask.shape[0], -1)
    mean = flat.mean(dim=1, keepdim=True)
    # The runtime's rule (runtime.describe.pooling.MEAN_SLACK): rounding in the mean of a constant map cannot put it above
    # every value.
    slack = MEAN_SLACK * flat.abs().amax(dim=1, keepdim=True)
    return (flat >= mean - slack).to(mask.dtype if mask.is_floating_point() else torch.float32).reshape(mask.shape)


def margin_logits(logits: torch.Tensor, labels: torch.Tensor, margin: float, scale: float) -> torch.Tensor:
    """A cosine head's logits ``scale * cos`` with ``scale * margin`` taken off each sample's own class (the additive
    cosine margin of CosFace: Wang et al., CVPR 2018): a training view must be ``margin`` closer to its own
    product than to any other before the loss lets go, a retrieval loss with a margin rather than a plain softmax."""
    if margin == 0.0:
        return logits
    return logits - scale * margin * torch.nn.functional.one_hot(labels, logits.shape[1]).to(logits.dtype)


def cross_domain_loss(descriptors: torch.Tensor, scale: float) -> torch.Tensor:
    """Symmetric InfoNCE between the two halves of a paired batch: row i of the first half (a catalogue view) and
    row i of the second (a store photo of the same product) are a pair, the other rows of the other half are the
    negatives. It trains the catalogue-only task itself (a photo must find its own product's catalogue picture
    among the others'), class-agnostic, which is what a product the model never saw needs; the classification
    loss alone only pulls both domains to a per-class weight that unseen products do not have."""
    if descriptors.shape[0] % 2:
        raise ValueError(f"a paired batch has an even number of rows, got {descriptors.shape[0]}")
    catalogue, photos = torch.nn.functional.normalize(descriptors, dim=1).chunk(2)
    logits = scale * photos @ catalogue.T
    target = torch.arange(len(photos), device=descriptors.device)
    return 0.5 * (torch.nn.functional.cross_entropy(logits, target)
                  + torch.nn.functional.cross_entropy(logits.T, target))
