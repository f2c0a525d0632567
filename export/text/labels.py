"""EAST training targets at stride 4 from text quads, and the reader of sample directories (DEVELOPERS.md).

Geometry convention (DEVELOPERS.md, "Text detector (EAST)"): cell (i, j) stands for the input point
p = (4 j + 2, 4 i + 2), the centre of its 4 x 4 pixel block when pixel (x, y) spans [x, x + 1] x [y, y + 1] (the
convention of the synthetic generator's quads). A cell's box has axes u = (cos theta, sin theta) and
v = (-sin theta, cos theta), and its corners are p - d_left u - d_top v, p + d_right u - d_top v,
p + d_right u + d_bottom v, p - d_left u + d_bottom v.

For a quad q0 q1 q2 q3 (clockwise from the text's top-left corner) the box is the smallest rectangle whose u axis
follows the top edge q0 -> q1 and which contains the quad: theta = atan2 of the top edge (brought into
(-pi/2, pi/2] by a half turn when the text is upside down: the same rectangle, corners relabelled), and the box
spans the min..max of the corners' projections on u and v. For the rotated rectangles with mild perspective that
the generator draws, this is the rotated bounding rectangle of the text.

Score map: the quad shrunk as in the EAST paper (section 3.3.1): with r_i the length of the shorter edge at
corner i, each edge's two endpoints move inwards along it by `shrink` * r_i, the longer pair of opposite edges
first. For a w x h rectangle (h <= w) this moves every side inwards by `shrink` * h. A cell is positive when its
point p lies inside the shrunk quad; the inside test runs at the exact cell points (crossing rule in numpy),
rather than through a polygon filler whose edge rules would add cells whose point lies outside.

Training mask: 0 on the cells inside ignored quads, quads lower than `min_height` (the shorter of the two side
edges, the same rule the generator and the PP-OCR teacher use to set `ignore`), degenerate quads, and quads whose
shrunk region holds no cell point; 1 elsewhere (positive cells of valid text win over overlapping ignored quads).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runtime.errors import ShadematchError

STRIDE = 4
#: Quads lower than this (pixels) are masked out of the loss (see synth.MIN_TEXT_HEIGHT, teacher.MIN_TEXT_HEIGHT).
MIN_TEXT_HEIGHT = 8.0
LABELS = "labels.jsonl"


class LabelsError(ShadematchError):
    """A labels.jsonl of a text sample directory is malformed; the message names the line."""


@dataclass(frozen=True)
class Sample:
    """One training image: its path, quads (n, 4, 2) float32 in image pixels, texts and ignore flags (n,)."""

    image: Path
    quads: np.ndarray
    texts: tuple[str, ...]
    ignore: np.ndarray


# --------------------------------------------------------------------------------------------------- geometry
def quad_height(quad: np.ndarray) -> float:
    """The shorter of the quad's two side edges (q0-q3 and q1-q2)."""
    quad = np.asarray(quad, dtype=np.float64)
    return float(min(np.linalg.norm(quad[3] - quad[0]), np.linalg.norm(quad[2] - quad[1])))


def quad_rectangle(quad: np.ndarray) -> tuple[float, np.ndarray]:
    """(theta, extents) of the quad's box: extents = (u_min, u_max, v_min, v_max), projections on u and v."""
    quad = np.asarray(quad, dtype=np.float64)
    dx, dy = quad[1] - quad[0]
    if math.hypot(dx, dy) < 1e-9:  # no top edge: fall back on the bottom edge
        dx, dy = quad[2] - quad[3]
    theta = math.atan2(dy, dx)
    if theta > math.pi / 2:
        theta -= math.pi
    elif theta <= -math.pi / 2:
        theta += math.pi
    u = np.array([math.cos(theta), math.sin(theta)])
    v = np.array([-math.sin(theta), math.cos(theta)])
    pu, pv = quad @ u, quad @ v
    return theta, np.array([pu.min(), pu.max(), pv.min(), pv.max()])


def rectangle_corners(theta: float, extents: np.ndarray) -> np.ndarray:
    """The 4 corners (clockwise from top-left in the box's frame) of a box given by `quad_rectangle`."""
    u = np.array([math.cos(theta), math.sin(theta)])
    v = np.array([-math.sin(theta), math.cos(theta)])
    u0, u1, v0, v1 = extents
    return np.stack([u0 * u + v0 * v, u1 * u + v0 * v, u1 * u + v1 * v, u0 * u + v1 * v])


def decode_reference(geometry_cell: np.ndarray, i: int, j: int) -> np.ndarray:
    """Corners (4, 2) of the box that cell (i, j) with geometry (d_top, d_right, d_bottom, d_left, theta) encodes."""
    d_top, d_right, d_bottom, d_left, theta = (float(x) for x in np.asarray(geometry_cell).reshape(5))
    p = np.array([STRIDE * j + STRIDE / 2, STRIDE * i + STRIDE / 2])
    u = np.array([math.cos(theta), math.sin(theta)])
    v = np.array([-math.sin(theta), math.cos(theta)])
    return np.stack([p - d_left * u - d_top * v, p + d_right * u - d_top * v,
                     p + d_right * u + d_bottom * v, p - d_left * u + d_bottom * v])


def shrink_quad(quad: np.ndarray, ratio: float = 0.3) -> np.ndarray:
    """The EAST paper's shrunk quad: endpoints of each edge move inwards by ratio * r_i, longer edge pair first."""
    q = np.asarray(quad, dtype=np.float64).copy()
    edge = [np.linalg.norm(q[(k + 1) % 4] - q[k]) for k in range(4)]  # edge k joins corner k and k + 1
    ref = [min(edge[k], edge[k - 1]) for k in range(4)]  # r_k: the shorter edge at corner k
    order = (0, 2, 1, 3) if edge[0] + edge[2] >= edge[1] + edge[3] else (1, 3, 0, 2)
    for k in order:
        a, b = k, (k + 1) % 4
        d = q[b] - q[a]
        length = float(np.linalg.norm(d))
        if length < 1e-9:
            continue
        d /= length
        q[a] += d * ratio * ref[a]
        q[b] -= d * ratio * ref[b]
    return q


def _cells_inside(poly: np.ndarray, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of the cells whose point (4 j + 2, 4 i + 2) lies inside ``poly`` (crossing rule)."""
    half = STRIDE / 2
    lo = poly.min(axis=0)
    hi = poly.max(axis=0)
    j0, i0 = max(0, math.ceil((lo[0] - half) / STRIDE)), max(0, math.ceil((lo[1] - half) / STRIDE))
    j1, i1 = min(w - 1, math.floor((hi[0] - half) / STRIDE)), min(h - 1, math.floor((hi[1] - half) / STRIDE))
    if j1 < j0 or i1 < i0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    ys = STRIDE * np.arange(i0, i1 + 1, dtype=np.float64)[:, None] + half
    xs = STRIDE * np.arange(j0, j1 + 1, dtype=np.float64)[None, :] + half
    inside = np.zeros((ys.shape[0], xs.shape[1]), dtype=bool)
    n = len(poly)
    for k in range(n):
        (xa, ya), (xb, yb) = poly[k], poly[(k + 1) % n]
        if ya == yb:
            continue
        crosses = (ya > ys) != (yb > ys)  # (rows, 1)
        x_at = xa + (ys - ya) * (xb - xa) / (yb - ya)  # (rows, 1)
        inside ^= crosses & (xs < x_at)
    rows, cols = np.nonzero(inside)
    return rows + i0, cols + j0


def make_targets(quads: np.ndarray, ignore: np.ndarray, height: int, width: int, shrink: float = 0.3,
                 min_height: float = MIN_TEXT_HEIGHT) -> dict[str, np.ndarray]:
    """EAST targets at stride 4 for an image of ``height`` x ``width`` pixels.

    Returns ``score`` (1, h, w) in {0, 1}, ``geometry`` (5, h, w) (d_top, d_right, d_bottom, d_left, theta on the
    positive cells, 0 elsewhere) and ``mask`` (1, h, w), all float32, with h = height // 4 and w = width // 4.
    """
    h, w = int(height) // STRIDE, int(width) // STRIDE
    quads = np.asarray(quads, dtype=np.float64).reshape(-1, 4, 2)
    ignore = np.asarray(ignore, dtype=bool).reshape(-1)
    if len(ignore) != len(quads):
        raise ValueError(f"{len(quads)} quads but {len(ignore)} ignore flags")
    score = np.zeros((1, h, w), np.float32)
    geometry = np.zeros((5, h, w), np.float32)
    mask = np.ones((1, h, w), np.float32)
    positives: list[tuple[np.ndarray, np.ndarray]] = []
    for quad, skip in zip(quads, ignore):
        if not np.all(np.isfinite(quad)):
            continue
        area = 0.5 * abs(float(np.dot(quad[:, 0], np.roll(quad[:, 1], -1)) - np.dot(quad[:, 1], np.roll(quad[:, 0], -1))))
        full = _cells_inside(quad, h, w)
        if skip or area < 1.0 or quad_height(quad) < min_height:
            mask[0][full] = 0.0
            continue
        rows, cols = _cells_inside(shrink_quad(quad, shrink), h, w)
        if rows.size == 0:  # too thin to hold a cell point once shrunk: don't teach either way
            mask[0][full] = 0.0
            continue
        theta, (u0, u1, v0, v1) = quad_rectangle(quad)
        px = STRIDE * cols + STRIDE / 2
        py = STRIDE * rows + STRIDE / 2
        pu = px * math.cos(theta) + py * math.sin(theta)
        pv = -px * math.sin(theta) + py * math.cos(theta)
        score[0, rows, cols] = 1.0
        geometry[0, rows, cols] = pv - v0  # d_top
        geometry[1, rows, cols] = u1 - pu  # d_right
        geometry[2, rows, cols] = v1 - pv  # d_bottom
        geometry[3, rows, cols] = pu - u0  # d_left
        geometry[4, rows, cols] = theta
        positives.append((rows, cols))
    for rows, cols in positives:
        mask[0, rows, cols] = 1.0
    return {"score": score, "geometry": geometry, "mask": mask}


# --------------------------------------------------------------------------------------------------- reading
def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _parse_record(record, root: Path) -> Sample:
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    for key in ("image", "quads", "texts", "ignore"):
        if key not in record:
            raise ValueError(f"no {key!r} field")
    image = record["image"]
    if not isinstance(image, str) or not image.strip():
        raise ValueError("'image' must be a non-empty file name")
    quads = record["quads"]
    if not isinstance(quads, list):
        raise ValueError("'quads' must be a list of quads")
    for k, quad in enumerate(quads):
        if not (isinstance(quad, list) and len(quad) == 4
                and all(isinstance(pt, list) and len(pt) == 2 and all(_is_number(c) for c in pt) for pt in quad)):
            raise ValueError(f"quad {k} is not 4 [x, y] points of finite numbers")
    texts, ignore = record["texts"], record["ignore"]
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise ValueError("'texts' must be a list of strings")
    if not isinstance(ignore, list) or not all(isinstance(f, bool) for f in ignore):
        raise ValueError("'ignore' must be a list of true/false")
    if not len(quads) == len(texts) == len(ignore):
        raise ValueError(f"{len(quads)} quads, {len(texts)} texts and {len(ignore)} ignore flags: the counts differ")
    path = root / image
    if not path.is_file():
        raise ValueError(f"image {image!r} not found in {root}")
    return Sample(image=path, quads=np.asarray(quads, dtype=np.float32).reshape(-1, 4, 2),
                  texts=tuple(texts), ignore=np.asarray(ignore, dtype=bool).reshape(-1))


def read_samples(root: Path) -> list[Sample]:
    """Every sample of a sample directory (``root/labels.jsonl``), validated; errors name the line."""
    root = Path(root)
    labels = root / LABELS
    try:
        text = labels.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LabelsError(f"{labels}: no such file (a text sample directory holds NNNNNN.jpg + {LABELS})") from None
    except UnicodeDecodeError:
        raise LabelsError(f"{labels}: not UTF-8 text") from None
    except OSError as exc:
        raise LabelsError(f"{labels}: cannot be read ({exc.strerror or exc})") from None
    samples: list[Sample] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise LabelsError(f"{labels} line {number}: not JSON ({exc.msg})") from None
        try:
            sample = _parse_record(record, root)
        except ValueError as exc:
            raise LabelsError(f"{labels} line {number}: {exc}") from None
        name = record["image"]
        if name in seen:
            raise LabelsError(f"{labels} line {number}: image {name!r} already labelled on line {seen[name]}")
        seen[name] = number
        samples.append(sample)
    if not samples:
        raise LabelsError(f"{labels}: no samples")
    return samples
