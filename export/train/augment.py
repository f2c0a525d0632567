"""Augmentation for MANet's training: clean catalogue images -> store-like photos, and mild jitter for real photos.

Everything is numpy / OpenCV, driven by the ``np.random.Generator`` passed in (same generator state, same
output), and leaves text readable: no horizontal or vertical flips, rotations of a few degrees only, since the
printed text is what tells near-identical packs apart.

`store_like` (catalogue image, product on a white / plain background):

1. Product mask: the caller's, or `export.train.saliency.foreground_mask` (non-background pixels, i.e. non
   near-white for a white backdrop, after a small morphological close, holes filled).
2. One homography places the product in a ``size`` x ``size`` frame: random zoom (the product's longer side
   covers 45 %..115 % of the frame, so it is sometimes cut by the frame, as in a close-up), slight aspect change,
   rotation (a few degrees), perspective (each corner of the product's box moved independently) and offset.
   Image and mask go through the very same warp (large sources are first shrunk by the same INTER_AREA resize),
   so the returned mask is exactly where the product's pixels landed.
3. Paste onto a background: a random crop of ``background`` (a photo) when given, else a synthetic one (plain
   colour, gradient, smooth noise texture, or a "shelf" of stripes and coloured blocks). With a small
   probability the catalogue backdrop is kept (some shoppers photograph products on a plain surface).
4. Photometric, on the composite: glare (a bright blurred ellipse centred on the product: a reflection on a
   glossy pack), colour cast, brightness / contrast, uneven lighting, gaussian or motion blur, sensor noise,
   JPEG re-compression. The mask is untouched by these.

`photo_augment` (real photos): a mild square crop (75 %..100 % of the shorter side, +-4 degrees), colour
jitter, light blur, noise and JPEG; the mask, if any, follows the crop exactly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import cv2
import numpy as np

from .saliency import foreground_mask

__all__ = ["StoreLikeConfig", "HeapConfig", "PhotoConfig", "store_like", "heap_like", "photo_augment",
           "synthetic_background"]


@dataclass(frozen=True)
class StoreLikeConfig:
    """Ranges and probabilities of `store_like`. ``StoreLikeConfig().geometric_only()`` turns photometry off."""

    scale: tuple[float, float] = (0.45, 1.15)  # product's longer side / frame side
    aspect: float = 0.08  # log-aspect jitter, +-
    rotation: float = 12.0  # degrees, +-
    perspective: float = 0.08  # corner jitter, fraction of the product's placed size
    shift: float = 0.15  # offset of the product's centre, fraction of the frame
    p_paste: float = 0.9  # replace the catalogue backdrop with a background
    p_background_photo: float = 0.8  # when a background photo is given
    p_glare: float = 0.35
    p_color: float = 0.9
    p_lighting: float = 0.4
    p_blur: float = 0.5
    p_noise: float = 0.3
    p_jpeg: float = 0.7
    jpeg_quality: tuple[int, int] = (35, 92)

    def geometric_only(self) -> "StoreLikeConfig":
        return replace(self, p_glare=0.0, p_color=0.0, p_lighting=0.0, p_blur=0.0, p_noise=0.0, p_jpeg=0.0)


@dataclass(frozen=True)
class HeapConfig:
    """Ranges of `heap_like`: each copy's longer side / frame side, grid pitch / copy side (below 1: copies
    overlap), centre jitter (fraction of the pitch), log-size jitter, rotation (degrees, +-), brightness of a
    copy."""

    scale: tuple[float, float] = (0.2, 0.45)
    overlap: float = 0.7
    jitter: float = 0.3
    size_jitter: float = 0.15
    rotation: float = 15.0
    shade: tuple[float, float] = (0.75, 1.05)


@dataclass(frozen=True)
class PhotoConfig:
    """Ranges and probabilities of `photo_augment` (milder than `StoreLikeConfig`)."""

    crop: tuple[float, float] = (0.75, 1.0)  # square crop side / shorter image side
    rotation: float = 4.0
    p_color: float = 0.8
    p_blur: float = 0.3
    p_noise: float = 0.2
    p_jpeg: float = 0.5
    jpeg_quality: tuple[int, int] = (50, 95)


# --- geometry ---------------------------------------------------------------------------------------------------


def _check_image(image: np.ndarray) -> None:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"need an (H, W, 3) uint8 image, got {image.shape} {image.dtype}")


def _check_mask(mask: np.ndarray, image: np.ndarray) -> np.ndarray:
    mask = np.asarray(mask, dtype=np.float32)
    if mask.shape != image.shape[:2]:
        raise ValueError(f"mask {mask.shape} does not match image {image.shape[:2]}")
    return mask


def _product_box(mask: np.ndarray) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) of the mask's product pixels (edges, in pixel coordinates); the whole image if empty."""
    ys, xs = np.nonzero(mask > 0.5)
    if xs.size == 0:
        h, w = mask.shape
        return 0.0, 0.0, float(w), float(h)
    return float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)


def _rotation(deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]], dtype=np.float64)


def _translation(tx: float, ty: float) -> np.ndarray:
    return np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1]], dtype=np.float64)


def _scaling(sx: float, sy: float) -> np.ndarray:
    return np.diag([sx, sy, 1.0])


def _apply(H: np.ndarray, points: np.ndarray) -> np.ndarray:
    p = np.c_[points, np.ones(len(points))] @ H.T
    return p[:, :2] / p[:, 2:3]


def _warp(image: np.ndarray, mask: np.ndarray | None, H: np.ndarray, size: int, fill: tuple[float, ...],
          border: int = cv2.BORDER_CONSTANT) -> tuple[np.ndarray, np.ndarray | None]:
    """Warp image and mask by the homography H (source -> output pixels) into size x size.

    When H shrinks the source a lot, both are first resized by the same INTER_AREA factor (no aliasing) and H is
    composed with the inverse of that resize, so image and mask still see one identical geometry.
    """
    # Local scale of H at the source centre: sqrt |det| of its Jacobian there.
    h, w = image.shape[:2]
    centre = np.array([[w / 2, h / 2], [w / 2 + 1, h / 2], [w / 2, h / 2 + 1]])
    c0, cx, cy = _apply(H, centre)
    scale = math.sqrt(abs((cx - c0)[0] * (cy - c0)[1] - (cx - c0)[1] * (cy - c0)[0]))
    if scale < 0.6:
        f = scale / 0.8
        nw, nh = max(1, int(round(w * f))), max(1, int(round(h * f)))
        fx, fy = nw / w, nh / h
        image = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
        if mask is not None:
            mask = cv2.resize(mask, (nw, nh), interpolation=cv2.INTER_AREA)
        # cv2.resize maps pixel centres: x_small = (x + 0.5) * fx - 0.5; H must take small coords back first.
        back = _translation(-0.5, -0.5) @ _scaling(1 / fx, 1 / fy) @ _translation(0.5, 0.5)
        H = H @ back
    out = cv2.warpPerspective(image, H, (size, size), flags=cv2.INTER_LINEAR, borderMode=border, borderValue=fill)
    out_mask = None
    if mask is not None:
        out_mask = cv2.warpPerspective(mask, H, (size, size), flags=cv2.INTER_LINEAR, borderMode=border,
                                       borderValue=0.0)
        out_mask = np.clip(out_mask, 0.0, 1.0).astype(np.float32)
    return out, out_mask


def _placement(box: tuple[float, float, float, float], rng: np.random.Generator, size: int,
               cfg: StoreLikeConfig) -> np.ndarray:
    """Homography putting the product box into the frame: zoom, aspect, rotation, offset, then perspective."""
    x0, y0, x1, y1 = box
    bw, bh = x1 - x0, y1 - y0
    s = rng.uniform(*cfg.scale) * size / max(bw, bh)
    a = math.exp(rng.uniform(-cfg.aspect, cfg.aspect))
    angle = rng.uniform(-cfg.rotation, cfg.rotation)
    centre = size / 2 + rng.uniform(-cfg.shift, cfg.shift, size=2) * size
    A = (_translation(*centre) @ _rotation(angle) @ _scaling(s * a, s / a)
         @ _translation(-(x0 + x1) / 2, -(y0 + y1) / 2))
    src = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)
    dst = _apply(A, src) + rng.uniform(-1, 1, size=(4, 2)) * cfg.perspective * s * max(bw, bh)
    return cv2.getPerspectiveTransform(src.astype(np.float32), dst.astype(np.float32)).astype(np.float64)


# --- backgrounds ------------------------------------------------------------------------------------------------


def _random_colour(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(0, 255, size=3)


def synthetic_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A store-ish backdrop, float32 (size, size, 3) in 0..255: plain, gradient, smooth texture or shelf."""
    kind = rng.integers(4)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / max(size - 1, 1)
    if kind == 0:  # plain colour (a counter, a wall)
        bg = np.broadcast_to(_random_colour(rng), (size, size, 3)).astype(np.float32)
    elif kind == 1:  # linear gradient between two colours
        angle = rng.uniform(0, 2 * math.pi)
        t = (xx * math.cos(angle) + yy * math.sin(angle))
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
        c0, c1 = _random_colour(rng), _random_colour(rng)
        bg = (c0 * (1 - t[..., None]) + c1 * t[..., None]).astype(np.float32)
    elif kind == 2:  # smooth noise texture: a coarse random grid upsampled
        cells = int(rng.integers(3, 12))
        coarse = rng.uniform(0, 255, size=(cells, cells, 3)).astype(np.float32)
        bg = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
        bg += rng.normal(0, rng.uniform(2, 12), size=bg.shape).astype(np.float32)
    else:  # shelf: horizontal shelf edges and blocks of neighbouring products
        bg = np.broadcast_to(_random_colour(rng) * 0.6, (size, size, 3)).astype(np.float32).copy()
        for _ in range(int(rng.integers(3, 10))):
            w = int(rng.uniform(0.1, 0.4) * size)
            h = int(rng.uniform(0.2, 0.6) * size)
            x = int(rng.integers(-w // 2, size))
            y = int(rng.integers(-h // 2, size))
            bg[max(y, 0):y + h, max(x, 0):x + w] = _random_colour(rng)
        for _ in range(int(rng.integers(1, 3))):
            y = int(rng.integers(0, size))
            t = max(2, int(rng.uniform(0.02, 0.06) * size))
            bg[y:y + t] = _random_colour(rng)
        bg = cv2.GaussianBlur(bg, (0, 0), rng.uniform(0.5, 2.0))
    return np.clip(bg, 0, 255).astype(np.float32)


def _photo_background(photo: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    """A random square crop (30 %..100 % of the shorter side) of a background photo, resized to size."""
    _check_image(photo)
    h, w = photo.shape[:2]
    side = max(1, int(rng.uniform(0.3, 1.0) * min(h, w)))
    y = int(rng.integers(0, h - side + 1))
    x = int(rng.integers(0, w - side + 1))
    crop = photo[y:y + side, x:x + side]
    interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(crop, (size, size), interpolation=interp).astype(np.float32)


# --- photometry ---------------------------------------------------------------------------------------------------


def _glare(img: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A bright, soft elliptical highlight centred on a product pixel (light reflected by a glossy pack)."""
    size = img.shape[0]
    ys, xs = np.nonzero(mask > 0.5)
    if xs.size:
        i = int(rng.integers(xs.size))
        centre = (int(xs[i]), int(ys[i]))
    else:
        centre = (int(rng.integers(size)), int(rng.integers(size)))
    a = max(2, int(rng.uniform(0.05, 0.22) * size))
    b = max(1, int(a * rng.uniform(0.2, 0.7)))
    layer = np.zeros(img.shape[:2], np.float32)
    cv2.ellipse(layer, centre, (a, b), rng.uniform(0, 180), 0, 360, 1.0, thickness=-1)
    layer = cv2.GaussianBlur(layer, (0, 0), max(0.5, 0.35 * b))
    alpha = (rng.uniform(0.45, 0.9) * layer)[..., None]
    return img + alpha * (255.0 - img)


def _colour(img: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    """Colour cast (per-channel gain), contrast around the mean, brightness offset."""
    gain = np.exp(rng.normal(0, 0.07 * strength, size=3)).astype(np.float32)
    contrast = rng.uniform(1 - 0.25 * strength, 1 + 0.25 * strength)
    brightness = rng.uniform(-25, 25) * strength
    mean = img.mean()
    return (img * gain - mean) * contrast + mean + brightness


def _lighting(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Uneven lighting: a linear brightness ramp (0.7..1 at one side, 1 at the other) in a random direction."""
    size = img.shape[0]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / max(size - 1, 1)
    angle = rng.uniform(0, 2 * math.pi)
    t = xx * math.cos(angle) + yy * math.sin(angle)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    low = rng.uniform(0.7, 1.0)
    return img * (low + (1 - low) * t)[..., None]


def _blur(img: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    """Out-of-focus (gaussian) or camera-shake (motion, a line kernel at a random angle) blur."""
    if rng.random() < 0.5:
        return cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 1.8 * strength))
    length = int(rng.integers(3, max(4, int(round(9 * strength))) + 1))
    kernel = np.zeros((length, length), np.float32)
    c = (length - 1) / 2
    angle = rng.uniform(0, math.pi)
    dx, dy = math.cos(angle) * c, math.sin(angle) * c
    cv2.line(kernel, (int(round(c - dx)), int(round(c - dy))), (int(round(c + dx)), int(round(c + dy))), 1.0, 1)
    kernel /= max(float(kernel.sum()), 1e-6)
    return cv2.filter2D(img, -1, kernel, borderType=cv2.BORDER_REFLECT)


def _noise(img: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    return img + rng.normal(0, rng.uniform(2, 7) * strength, size=img.shape).astype(np.float32)


def _jpeg(img: np.ndarray, rng: np.random.Generator, quality: tuple[int, int]) -> np.ndarray:
    """Re-compress as JPEG (RGB kept: cv2 takes the channels as BGR both ways, so the order round-trips)."""
    q = int(rng.integers(quality[0], quality[1] + 1))
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, q])
    if not ok:  # pragma: no cover - OpenCV always encodes uint8 HxWx3
        return img
    return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)


def _to_uint8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


# --- public -------------------------------------------------------------------------------------------------------


def store_like(image: np.ndarray, mask: np.ndarray | None, rng: np.random.Generator, size: int,
               background: np.ndarray | None = None, config: StoreLikeConfig = StoreLikeConfig()
               ) -> tuple[np.ndarray, np.ndarray]:
    """A store-like photo of a catalogue product, and the product's exact mask in it.

    ``image``: (H, W, 3) uint8 RGB catalogue image; ``mask``: its product mask (H, W) in [0, 1], or None to
    compute it with `foreground_mask`; ``background``: an optional (H', W', 3) uint8 photo to paste onto.
    Returns (size, size, 3) uint8 and the mask (size, size) float32 in [0, 1] after the same geometric warp.
    """
    _check_image(image)
    mask = foreground_mask(image) if mask is None else _check_mask(mask, image)
    cfg = config
    H = _placement(_product_box(mask), rng, size, cfg)
    # The catalogue backdrop colour fills what the warp uncovers when the backdrop is kept.
    ring = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
    fill = tuple(float(v) for v in np.median(ring, axis=0))
    warped, out_mask = _warp(image, mask, H, size, fill)
    img = warped.astype(np.float32)
    if rng.random() < cfg.p_paste:
        if background is not None and rng.random() < cfg.p_background_photo:
            bg = _photo_background(background, rng, size)
        else:
            bg = synthetic_background(rng, size)
        m = out_mask[..., None]
        img = img * m + bg * (1.0 - m)
    return _photometry(img, out_mask, rng, cfg), out_mask


def heap_like(image: np.ndarray, mask: np.ndarray | None, rng: np.random.Generator, size: int,
              config: HeapConfig = HeapConfig(), photometry: StoreLikeConfig = StoreLikeConfig()
              ) -> tuple[np.ndarray, np.ndarray]:
    """A store-like photo of many copies of a catalogue product (a bin of apples, a row of cartons), and their
    union mask.

    Why: a catalogue pictures one fruit or one pack on white, a shopper photographs the heap or the shelf facing,
    and `store_like`'s single placed product never shows what a heap looks like (the Grocery Store photos of
    fruit and vegetables are mostly heaps). Each copy is placed like `store_like` places its one (zoom, aspect,
    rotation, perspective) on a jittered grid that fills the frame, far rows first so that nearer copies overlap
    them, each copy a little shaded, on a synthetic backdrop; then `store_like`'s photometry. Same arguments and
    returns as `store_like`. As build-time views it lost on the unseen-products protocol
    (benchmarks/new_products/README.md, Levers), so `build` does not use it."""
    _check_image(image)
    mask = foreground_mask(image) if mask is None else _check_mask(mask, image)
    # the product's cut-out, shrunk once to about the largest copy, so each copy warps a small source
    x0, y0, x1, y1 = (int(v) for v in _product_box(mask))
    cut, cut_mask = image[y0:y1, x0:x1], mask[y0:y1, x0:x1]
    shrink = min(1.0, config.scale[1] * size * 1.3 / max(cut.shape[:2]))
    if shrink < 1.0:
        dsize = (max(1, round(cut.shape[1] * shrink)), max(1, round(cut.shape[0] * shrink)))
        cut = cv2.resize(cut, dsize, interpolation=cv2.INTER_AREA)
        cut_mask = cv2.resize(cut_mask, dsize, interpolation=cv2.INTER_AREA)
    ch, cw = cut.shape[:2]
    cut = cut.astype(np.float32) * cut_mask[..., None]  # premultiplied: a copy's edge blends, never darkens
    src = np.array([[0, 0], [cw, 0], [cw, ch], [0, ch]], dtype=np.float64)
    copy_side = rng.uniform(*config.scale) * size
    cells = max(2, int(math.ceil(size / (copy_side * config.overlap))))
    pitch = size / cells
    img = synthetic_background(rng, size)
    union = np.zeros((size, size), np.float32)
    centres = [((i + 0.5 + rng.uniform(-config.jitter, config.jitter)) * pitch,
                (j + 0.5 + rng.uniform(-config.jitter, config.jitter)) * pitch)
               for j in range(-1, cells + 1) for i in range(-1, cells + 1)]
    # far (top) rows first, so nearer copies overlap them as in a photographed bin
    for cx, cy in sorted(centres, key=lambda c: c[1] + rng.uniform(-0.5, 0.5) * pitch):
        s = copy_side * math.exp(rng.uniform(-config.size_jitter, config.size_jitter)) / max(cw, ch)
        a = math.exp(rng.uniform(-photometry.aspect, photometry.aspect))
        A = (_translation(cx, cy) @ _rotation(rng.uniform(-config.rotation, config.rotation))
             @ _scaling(s * a, s / a) @ _translation(-cw / 2, -ch / 2))
        dst = _apply(A, src) + rng.uniform(-1, 1, size=(4, 2)) * photometry.perspective * s * max(cw, ch)
        left, top = np.floor(np.clip(dst.min(axis=0), 0, size)).astype(int)
        right, bottom = np.ceil(np.clip(dst.max(axis=0), 0, size)).astype(int)
        if right <= left or bottom <= top:
            continue
        H = cv2.getPerspectiveTransform(src.astype(np.float32), (dst - (left, top)).astype(np.float32))
        rect = (int(right - left), int(bottom - top))
        warped = cv2.warpPerspective(cut, H, rect, flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
        m = cv2.warpPerspective(cut_mask, H, rect, flags=cv2.INTER_LINEAR, borderValue=0)[..., None]
        region = img[top:bottom, left:right]
        region[:] = warped * rng.uniform(*config.shade) + region * (1.0 - m)
        union[top:bottom, left:right] = np.maximum(union[top:bottom, left:right], m[..., 0])
    return _photometry(img, union, rng, photometry), union


def _photometry(img: np.ndarray, mask: np.ndarray, rng: np.random.Generator, cfg: StoreLikeConfig) -> np.ndarray:
    """`store_like`'s photometric chain on a composite (float32, 0..255): glare on the product, colour cast,
    lighting, blur, noise, JPEG."""
    if rng.random() < cfg.p_glare:
        img = _glare(img, mask, rng)
    if rng.random() < cfg.p_color:
        img = _colour(img, rng)
    if rng.random() < cfg.p_lighting:
        img = _lighting(img, rng)
    if rng.random() < cfg.p_blur:
        img = _blur(img, rng)
    if rng.random() < cfg.p_noise:
        img = _noise(img, rng)
    out = _to_uint8(img)
    if rng.random() < cfg.p_jpeg:
        out = _jpeg(out, rng, cfg.jpeg_quality)
    return out


def photo_augment(image: np.ndarray, mask: np.ndarray | None, rng: np.random.Generator, size: int,
                  config: PhotoConfig = PhotoConfig()) -> tuple[np.ndarray, np.ndarray | None]:
    """Mild augmentation of a real photo: square crop + small rotation to size x size, colour, blur, noise, JPEG.

    No flips (text must stay readable). ``mask`` (H, W), if given, follows the crop exactly; None stays None
    (photos' pseudo masks come from the features of the augmented image, `saliency.pseudo_mask_from_features`).
    """
    _check_image(image)
    if mask is not None:
        mask = _check_mask(mask, image)
    cfg = config
    h, w = image.shape[:2]
    side = rng.uniform(*cfg.crop) * min(h, w)
    cx = rng.uniform(side / 2, w - side / 2)
    cy = rng.uniform(side / 2, h - side / 2)
    angle = rng.uniform(-cfg.rotation, cfg.rotation)
    s = size / side
    H = (_translation(size / 2, size / 2) @ _rotation(angle) @ _scaling(s, s) @ _translation(-cx, -cy))
    warped, out_mask = _warp(image, mask, H, size, (0.0, 0.0, 0.0), border=cv2.BORDER_REFLECT_101)
    img = warped.astype(np.float32)
    if rng.random() < cfg.p_color:
        img = _colour(img, rng, strength=0.6)
    if rng.random() < cfg.p_blur:
        img = _blur(img, rng, strength=0.6)
    if rng.random() < cfg.p_noise:
        img = _noise(img, rng, strength=0.6)
    out = _to_uint8(img)
    if rng.random() < cfg.p_jpeg:
        out = _jpeg(out, rng, cfg.jpeg_quality)
    return out, out_mask
