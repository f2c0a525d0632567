"""EAST output decoding: score/geometry maps -> text quads, with locality-aware NMS (Zhou et al., CVPR 2017).

numpy only (the runtime never imports torch, shapely or OpenCV). The geometry convention is the one of
DEVELOPERS.md ("Text detector (EAST)"): the cell (i, j) stands for the input pixel p = (4 j + 2, 4 i + 2); with
u = (cos theta, sin theta) and v = (-sin theta, cos theta) the corners, clockwise from the text's top-left, are
p - d_left u - d_top v, p + d_right u - d_top v, p + d_right u + d_bottom v, p - d_left u + d_bottom v.

Locality-aware NMS: the cells of one word predict nearly the same box, and they come in row-major order, so the
candidates are first merged sequentially (each with the running merged box while their IoU is above the threshold,
coordinates averaged with the scores as weights, scores summed), which collapses thousands of candidates into a few
before the quadratic standard NMS runs on the merged set.
"""
from __future__ import annotations

import numpy as np

__all__ = ["STRIDE", "decode", "polygon_area", "polygon_iou", "restore_quads"]

#: Output stride of the EAST maps: cell (i, j) <-> input pixel (4 j + 2, 4 i + 2).
STRIDE = 4


def restore_quads(ys: np.ndarray, xs: np.ndarray, geometry: np.ndarray, stride: int = STRIDE) -> np.ndarray:
    """Quads (n, 4, 2) float64 of the cells (ys, xs) from geometry (5, h, w), by the contract's corner formula."""
    d_top, d_right, d_bottom, d_left, theta = (np.asarray(geometry[k, ys, xs], dtype=np.float64) for k in range(5))
    px = stride * xs.astype(np.float64) + stride / 2
    py = stride * ys.astype(np.float64) + stride / 2
    cos, sin = np.cos(theta), np.sin(theta)
    # Offsets along u = (cos, sin) and v = (-sin, cos) for the corners tl, tr, br, bl.
    along_u = np.stack([-d_left, d_right, d_right, -d_left], axis=1)  # (n, 4)
    along_v = np.stack([-d_top, -d_top, d_bottom, d_bottom], axis=1)
    x = px[:, None] + along_u * cos[:, None] - along_v * sin[:, None]
    y = py[:, None] + along_u * sin[:, None] + along_v * cos[:, None]
    return np.stack([x, y], axis=2)


def _signed_area(poly: np.ndarray) -> np.ndarray:
    x, y = poly[..., 0], poly[..., 1]
    return 0.5 * (x * np.roll(y, -1, axis=-1) - np.roll(x, -1, axis=-1) * y).sum(axis=-1)


def polygon_area(poly: np.ndarray) -> float | np.ndarray:
    """Area of a simple polygon (k, 2) (shoelace), or of each polygon of a stack (..., k, 2)."""
    poly = np.asarray(poly, dtype=np.float64)
    if poly.ndim < 2 or poly.shape[-1] != 2:
        raise ValueError(f"polygons must be (..., k, 2), got {poly.shape}")
    if poly.shape[-2] < 3:
        area = np.zeros(poly.shape[:-2])
    else:
        area = np.abs(_signed_area(poly))
    return float(area) if poly.ndim == 2 else area


Point = tuple[float, float]


def _twice_signed_area(poly: list[Point]) -> float:
    return sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(poly, poly[1:] + poly[:1]))


def _clip_convex(subject: list[Point], clip: list[Point]) -> list[Point]:
    """Sutherland-Hodgman: the part of polygon ``subject`` inside the convex polygon ``clip``.

    Plain float arithmetic on lists: with 4 to 8 vertices per step, numpy's per-call overhead would make this
    ten times slower (measured), and locality-aware NMS calls it once per text cell.
    """
    orientation = 1.0 if _twice_signed_area(clip) >= 0 else -1.0
    out = subject
    for (ax, ay), (bx, by) in zip(clip, clip[1:] + clip[:1]):
        if not out:
            break
        # side > 0: on the inner side of the edge a -> b (left for a counter-clockwise clip, right otherwise).
        sides = [orientation * ((bx - ax) * (y - ay) - (by - ay) * (x - ax)) for x, y in out]
        clipped = []
        for (p, s), (q, t) in zip(zip(out, sides), zip(out[1:] + out[:1], sides[1:] + sides[:1])):
            if s >= 0:
                clipped.append(p)
            if s * t < 0:  # the edge p -> q crosses the clip line: add the crossing point
                f = s / (s - t)
                clipped.append((p[0] + f * (q[0] - p[0]), p[1] + f * (q[1] - p[1])))
        out = clipped
    return out


def polygon_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two convex polygons (k, 2), any orientation; 0 when either has no area."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if (a.min(axis=0) > b.max(axis=0)).any() or (b.min(axis=0) > a.max(axis=0)).any():
        return 0.0  # bounding boxes apart: the common case in NMS, no clipping needed
    pa, pb = [tuple(p) for p in a.tolist()], [tuple(p) for p in b.tolist()]
    area_a, area_b = abs(_twice_signed_area(pa)) / 2, abs(_twice_signed_area(pb)) / 2
    if area_a <= 0.0 or area_b <= 0.0:
        return 0.0
    inter = _clip_convex(pa, pb)
    inter_area = abs(_twice_signed_area(inter)) / 2 if len(inter) >= 3 else 0.0
    union = area_a + area_b - inter_area
    return float(inter_area / union) if union > 0 else 0.0


def _locality_merge(quads: np.ndarray, scores: np.ndarray, threshold: float
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sequential score-weighted merging of row-major candidates: (quads, summed scores, cell counts)."""
    merged, sums, counts = [], [], []
    current, current_score, current_count = None, 0.0, 0
    for quad, score in zip(quads, scores):
        if current is not None and polygon_iou(quad, current) > threshold:
            current = (score * quad + current_score * current) / (score + current_score)
            current_score += score
            current_count += 1
        else:
            if current is not None:
                merged.append(current)
                sums.append(current_score)
                counts.append(current_count)
            current, current_score, current_count = quad, float(score), 1
    if current is not None:
        merged.append(current)
        sums.append(current_score)
        counts.append(current_count)
    return np.asarray(merged), np.asarray(sums), np.asarray(counts)


def _standard_nms(quads: np.ndarray, scores: np.ndarray, threshold: float) -> list[int]:
    """Greedy NMS by descending score; indices of the kept quads."""
    order = list(np.argsort(-scores, kind="stable"))
    keep = []
    while order:
        best = order.pop(0)
        keep.append(best)
        order = [i for i in order if polygon_iou(quads[best], quads[i]) <= threshold]
    return keep


def decode(score: np.ndarray, geometry: np.ndarray, score_threshold: float = 0.8, nms_threshold: float = 0.2,
           stride: int = STRIDE) -> tuple[np.ndarray, np.ndarray]:
    """Text quads from one image's EAST maps.

    ``score`` (h, w) in [0, 1] and ``geometry`` (5, h, w) are the model outputs of one image. Returns ``quads``
    float32 (n, 4, 2), clockwise from the text's top-left, in input pixels, and ``scores`` float32 (n,): the mean
    score of the cells merged into each quad, highest first. Cells with a score above ``score_threshold`` vote for a
    box; boxes whose IoU is above ``nms_threshold`` are merged (consecutive cells) or suppressed (NMS).
    """
    score = np.asarray(score)
    geometry = np.asarray(geometry)
    if score.ndim != 2 or geometry.ndim != 3 or geometry.shape[0] != 5 or geometry.shape[1:] != score.shape:
        raise ValueError(f"need score (h, w) and geometry (5, h, w) on one grid, got {score.shape} and "
                         f"{geometry.shape}")
    ys, xs = np.nonzero(score > score_threshold)  # row-major: the order locality-aware merging relies on
    if len(ys) == 0:
        return np.zeros((0, 4, 2), dtype=np.float32), np.zeros((0,), dtype=np.float32)
    quads = restore_quads(ys, xs, geometry, stride)
    cell_scores = score[ys, xs].astype(np.float64)
    merged, sums, counts = _locality_merge(quads, cell_scores, nms_threshold)
    keep = _standard_nms(merged, sums, nms_threshold)
    keep = np.asarray(keep)
    means = sums[keep] / counts[keep]
    order = np.argsort(-means, kind="stable")
    return merged[keep[order]].astype(np.float32), means[order].astype(np.float32)
