"""Pseudo-saliency masks Y for eq. 1 (Wang et al., Sci China Inf Sci 2020), and why they are made this way.

No saliency labels exist for our data (neither for Perfect-500K in the seed: it trains on "pseudo-saliency
masks" binarised at their mean). We have two kinds of training images and one source of masks for each:

(a) Catalogue images: clean product cut-outs on a white / plain background. Background removal is then all but
    exact (`foreground_mask`), and `export.train.augment.store_like` applies the same geometric transform to the
    mask as to the image when it pastes the product into a store-like scene, so the mask of every synthetic
    "photo" is the true product region, not a guess.
(b) Real photos (shelves, hands, clutter): no cut-out exists. The mask is the channel energy of the ImageNet
    trunk's last-conv features, sum_k X0_k (`channel_energy`), normalised per image to [0, 1]: ImageNet-trained
    activations concentrate on objects, the usual unsupervised saliency proxy (CAM-style localisation, and the
    energy-based spatial weighting of R-MAC variants such as CroW / RA-MAC). Use the frozen ImageNet trunk
    (`VisualTrunk(load_imagenet_lite0())`), not MANet's own backbone, so the target does not drift with training.

Both are reduced to the saliency branch's grid (stride 32) and binarised at their per-image mean, as eq. 1 says
(`binarise_at_mean`): 1 where the map is at or above its mean, else 0.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .losses import binarise_at_mean

__all__ = [
    "foreground_mask",
    "channel_energy",
    "pseudo_mask_from_features",
    "mask_to_grid",
    "pseudo_mask_from_product_mask",
]

#: Largest per-channel difference from the background colour still counted as background (0..255).
BACKGROUND_TOLERANCE = 24
#: Canny thresholds of the outline edges added to the colour test (on a 3x3-smoothed grey image).
EDGE_LOW, EDGE_HIGH = 30, 90
#: Side of the closing kernel as a fraction of the shorter image side (a "small" close).
CLOSE_FRACTION = 0.015
#: Foreground components smaller than this fraction of the image are dropped (dust, JPEG ringing).
MIN_COMPONENT_FRACTION = 0.001


def foreground_mask(image: np.ndarray, tolerance: int = BACKGROUND_TOLERANCE,
                    close_fraction: float = CLOSE_FRACTION, convex: bool = True) -> np.ndarray:
    """Product mask of a catalogue image (product on a white / plain background): float32 (H, W) in {0, 1}.

    1. Background colour = the median of the image's 2-pixel border ring (white for most catalogue images; a
       plain grey or coloured backdrop works the same way).
    2. Candidate foreground = pixels whose largest per-channel difference from it exceeds ``tolerance`` (the
       "non-near-white" pixels for a white backdrop), plus Canny edges, which catch the faint outline of a white
       pack on a white backdrop.
    3. A small morphological close (elliptic kernel, ``close_fraction`` of the shorter side) bridges thin gaps,
       e.g. anti-aliased edges, broken outlines and white print on the pack.
    4. Holes are filled: only background-like pixels connected to the image border are background, so white
       labels or lids inside the product's outline stay product.
    5. Foreground specks smaller than 0.1 % of the image are dropped.
    6. ``convex`` (default): the mask becomes the convex hull of what is left. A white pack on a white backdrop
       (milk cartons) has whole faces within a few grey levels of the backdrop (252..254 against 255 in the demo
       catalogue), which no colour or edge test separates; its print and outline still span the pack, and
       cartons, boxes, tubes, jars and most bottles are close to convex. The cost is a sliver of backdrop beside
       a bottle's neck; without the hull the mask (and the pasted product) would lose chunks of such packs.

    An image that is all background gives an all-zero mask (``binarise_at_mean`` then treats it as salient
    everywhere).
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"need an (H, W, 3) uint8 image, got {image.shape} {image.dtype}")
    h, w = image.shape[:2]
    ring = np.concatenate([image[:2].reshape(-1, 3), image[-2:].reshape(-1, 3),
                           image[:, :2].reshape(-1, 3), image[:, -2:].reshape(-1, 3)])
    background = np.median(ring, axis=0)
    diff = np.abs(image.astype(np.int16) - background.astype(np.int16)).max(axis=2)
    fg = diff > tolerance
    # Outline edges too: a white pack on a white backdrop differs by a faint contour, not by its colour.
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    fg |= cv2.Canny(cv2.GaussianBlur(gray, (3, 3), 0), EDGE_LOW, EDGE_HIGH) > 0
    fg = fg.astype(np.uint8)
    k = max(3, int(round(close_fraction * min(h, w))) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    fg = cv2.morphologyEx(fg, cv2.MORPH_CLOSE, kernel)
    # Fill holes: background components that touch the border are the only background.
    n, labels = cv2.connectedComponents((1 - fg).astype(np.uint8), connectivity=4)
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    outside = np.isin(labels, border[border > 0]) & (fg == 0)
    fg = (~outside).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
    keep = np.zeros(n, dtype=bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= MIN_COMPONENT_FRACTION * h * w
    fg = keep[labels].astype(np.uint8)
    if convex and fg.any():
        ys, xs = np.nonzero(fg)
        hull = cv2.convexHull(np.stack([xs, ys], axis=1).astype(np.int32))
        cv2.fillConvexPoly(fg, hull, 1)
    return fg.astype(np.float32)


def channel_energy(X0: torch.Tensor) -> torch.Tensor:
    """Channel energy sum_k X0_k of features (N, K, h, w), min-max normalised per image: (N, 1, h, w) in [0, 1].

    A constant map (no spatial preference) becomes all zeros.
    """
    if X0.ndim != 4:
        raise ValueError(f"need features (N, K, h, w), got {tuple(X0.shape)}")
    energy = X0.detach().float().sum(dim=1, keepdim=True)
    lo = energy.amin(dim=(2, 3), keepdim=True)
    hi = energy.amax(dim=(2, 3), keepdim=True)
    return (energy - lo) / (hi - lo).clamp(min=1e-12)


def pseudo_mask_from_features(X0: torch.Tensor) -> torch.Tensor:
    """Pseudo mask of real photos, (b) above: channel energy of X0 binarised at its mean; (N, 1, h, w) in {0, 1}."""
    return binarise_at_mean(channel_energy(X0))


def mask_to_grid(mask: torch.Tensor | np.ndarray, grid: tuple[int, int]) -> torch.Tensor:
    """An image-size mask (N, 1, H, W), (N, H, W) or (H, W) as the covered fraction of each (h, w) grid cell.

    Adaptive average pooling: the same bin edges as the text mask's (runtime `text_mask`).
    """
    m = torch.as_tensor(np.asarray(mask, dtype=np.float32) if isinstance(mask, np.ndarray) else mask).float()
    if m.ndim == 2:
        m = m[None, None]
    elif m.ndim == 3:
        m = m[:, None]
    if m.ndim != 4 or m.shape[1] != 1:
        raise ValueError(f"need a mask (N, 1, H, W), (N, H, W) or (H, W), got {tuple(m.shape)}")
    return F.adaptive_avg_pool2d(m, grid)


def pseudo_mask_from_product_mask(mask: torch.Tensor | np.ndarray, grid: tuple[int, int]) -> torch.Tensor:
    """Pseudo mask of catalogue-derived images, (a) above: product coverage per grid cell, binarised at its mean."""
    return binarise_at_mean(mask_to_grid(mask, grid))
