"""EAST losses (Zhou et al., CVPR 2017, sec. 3.4): L = L_s + lambda_geo * L_g.

Targets come from `export.text.labels` (DEVELOPERS.md, "Text detector (EAST)"): ``score`` (N, 1, h, w), 1 inside
the shrunk text quads; ``geometry`` (N, 5, h, w), d_top, d_right, d_bottom, d_left in input pixels and theta in
radians, meaningful where ``score`` is 1; ``mask`` (N, 1, h, w), 1 where a cell takes part in training and 0 where
it is ignored (text marked ``ignore``, boxes too small to learn from).

Score loss: Dice (``score_loss="dice"``, the default) rather than the paper's class-balanced cross-entropy
(``"balanced_ce"``, also implemented). Why: text covers a few percent of the cells, and the paper's balancing makes
the loss scale with the text share of each image: with f = positives / total and beta = 1 - f, the per-cell mean is
f (1 - f) (mean positive loss + mean negative loss), so an image with 1 % text contributes ~30 times less than one
with 30 % text, and an image without text (beta = 1) teaches nothing about false positives. Dice is a ratio of
overlaps, independent of the text share, bounded in [0, 1] so lambda_geo keeps its meaning, and it is what the
re-implementations that reach the paper's numbers use (argman/EAST, SakuraRiven/EAST). It is computed over the
whole batch, so text-free images still penalise false positives whenever the batch holds any text.

Geometry loss, on positive unmasked cells only, averaged over them: the distances describe an axis-aligned box in
the text's own frame, so their IoU is exact: L_AABB = -log((|R ∩ R*| + 1) / (|R ∪ R*| + 1)) (the +1 keeps
degenerate boxes finite) and L_theta = 1 - cos(theta - theta*); L_g = L_AABB + lambda_theta * L_theta.
"""
from __future__ import annotations

import torch

__all__ = ["east_loss", "dice_loss", "balanced_bce_loss", "geometry_loss"]

#: Keeps log() and divisions finite.
_EPS = 1e-6


def dice_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """1 - 2 |P ∩ G| / (|P| + |G|) over the unmasked cells of the whole batch."""
    pred, target = pred * mask, target * mask
    intersection = (pred * target).sum()
    union = pred.sum() + target.sum() + _EPS
    return 1.0 - 2.0 * intersection / union


def balanced_bce_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The paper's eq. 5 per image: beta = 1 - positives / cells (unmasked cells), mean over cells, then images."""
    pred = pred.clamp(_EPS, 1.0 - _EPS)
    dims = tuple(range(1, pred.ndim))
    cells = mask.sum(dim=dims).clamp_min(1.0)
    positives = (target * mask).sum(dim=dims)
    beta = (1.0 - positives / cells).view(-1, *([1] * (pred.ndim - 1)))
    per_cell = -(beta * target * torch.log(pred) + (1.0 - beta) * (1.0 - target) * torch.log(1.0 - pred))
    return ((per_cell * mask).sum(dim=dims) / cells).mean()


def geometry_loss(pred_geo: torch.Tensor, geometry: torch.Tensor, weight: torch.Tensor,
                  lambda_theta: float = 10.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(L_g, L_AABB, L_theta), each averaged over the cells where ``weight`` (N, 1, h, w) is 1."""
    on = weight > 0.5
    # Targets are only defined on the positives: zero them elsewhere so that nothing there (not even inf or NaN)
    # reaches the value or the gradient; where() below then drops those cells.
    geometry = torch.where(on, geometry, torch.zeros_like(geometry))
    top_p, right_p, bottom_p, left_p, theta_p = pred_geo.split(1, dim=1)
    top_g, right_g, bottom_g, left_g, theta_g = geometry.split(1, dim=1)
    area_p = (top_p + bottom_p) * (left_p + right_p)
    area_g = (top_g + bottom_g) * (left_g + right_g)
    w_inter = torch.minimum(left_p, left_g) + torch.minimum(right_p, right_g)
    h_inter = torch.minimum(top_p, top_g) + torch.minimum(bottom_p, bottom_g)
    inter = w_inter.clamp_min(0.0) * h_inter.clamp_min(0.0)
    union = area_p + area_g - inter
    l_aabb = -torch.log((inter + 1.0) / (union + 1.0))
    l_theta = 1.0 - torch.cos(theta_p - theta_g)
    count = weight.sum().clamp_min(1.0)  # no positive cell in the batch: every part is a (differentiable) 0
    aabb = torch.where(on, l_aabb, torch.zeros_like(l_aabb)).sum() / count
    angle = torch.where(on, l_theta, torch.zeros_like(l_theta)).sum() / count
    return aabb + lambda_theta * angle, aabb, angle


def east_loss(pred_score: torch.Tensor, pred_geo: torch.Tensor, score: torch.Tensor, geometry: torch.Tensor,
              mask: torch.Tensor, lambda_geo: float = 1.0, lambda_theta: float = 10.0,
              score_loss: str = "dice") -> tuple[torch.Tensor, dict[str, float]]:
    """Total EAST loss and its parts (plain floats, for logging).

    ``pred_score`` (N, 1, h, w) after the sigmoid and ``pred_geo`` (N, 5, h, w) are the model's outputs; the
    targets are as in the module docstring. ``score_loss`` is ``"dice"`` or ``"balanced_ce"``.
    """
    if pred_score.shape != score.shape or pred_score.shape != mask.shape or pred_score.shape[1] != 1:
        raise ValueError(f"score maps must be (N, 1, h, w) alike: pred {tuple(pred_score.shape)}, "
                         f"target {tuple(score.shape)}, mask {tuple(mask.shape)}")
    if pred_geo.shape != geometry.shape or pred_geo.shape[1] != 5 or pred_geo.shape[2:] != score.shape[2:]:
        raise ValueError(f"geometry maps must be (N, 5, h, w) on the score grid: pred {tuple(pred_geo.shape)}, "
                         f"target {tuple(geometry.shape)}")
    score = score.to(pred_score.dtype)
    mask = mask.to(pred_score.dtype)
    if score_loss == "dice":
        l_score = dice_loss(pred_score, score, mask)
    elif score_loss == "balanced_ce":
        l_score = balanced_bce_loss(pred_score, score, mask)
    else:
        raise ValueError(f"score_loss must be 'dice' or 'balanced_ce', got {score_loss!r}")
    positive = (score > 0.5).to(pred_score.dtype) * (mask > 0.5).to(pred_score.dtype)
    l_geo, l_aabb, l_theta = geometry_loss(pred_geo, geometry.to(pred_geo.dtype), positive, lambda_theta)
    total = l_score + lambda_geo * l_geo
    parts = {
        "score": float(l_score.detach()),
        "aabb": float(l_aabb.detach()),
        "angle": float(l_theta.detach()),
        "geometry": float(l_geo.detach()),
        "total": float(total.detach()),
    }
    return total, parts
