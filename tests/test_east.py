"""EAST text detector: runtime decoding and polygon IoU (numpy only), then the model and losses (need torch).

The decode tests write the contract's geometry (DEVELOPERS.md, "Text detector (EAST)") for every cell inside a
hand-made rectangle, so the expected quads are known exactly.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from runtime.reading import decode, polygon_area, polygon_iou

STRIDE = 4


def rect_corners(cx: float, cy: float, width: float, height: float, theta: float) -> np.ndarray:
    """Corners tl, tr, br, bl of a rectangle centred at (cx, cy) whose reading direction is at angle theta."""
    u = np.array([math.cos(theta), math.sin(theta)])
    v = np.array([-math.sin(theta), math.cos(theta)])
    c = np.array([cx, cy])
    hw, hh = width / 2, height / 2
    return np.stack([c - hw * u - hh * v, c + hw * u - hh * v, c + hw * u + hh * v, c - hw * u + hh * v])


def write_rect(score: np.ndarray, geometry: np.ndarray, cx: float, cy: float, width: float, height: float,
               theta: float, value: float = 0.95) -> int:
    """Write score ``value`` and the rectangle's geometry into every cell whose pixel lies inside it."""
    h, w = score.shape
    ii, jj = np.mgrid[0:h, 0:w]
    px, py = STRIDE * jj + 2.0, STRIDE * ii + 2.0
    a = (px - cx) * math.cos(theta) + (py - cy) * math.sin(theta)  # along u
    b = -(px - cx) * math.sin(theta) + (py - cy) * math.cos(theta)  # along v
    inside = (np.abs(a) < width / 2) & (np.abs(b) < height / 2)
    score[inside] = value
    geometry[0][inside] = (b + height / 2)[inside]  # d_top
    geometry[1][inside] = (width / 2 - a)[inside]  # d_right
    geometry[2][inside] = (height / 2 - b)[inside]  # d_bottom
    geometry[3][inside] = (a + width / 2)[inside]  # d_left
    geometry[4][inside] = theta
    return int(inside.sum())


def empty_maps(h: int = 40, w: int = 48) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((h, w), np.float32), np.zeros((5, h, w), np.float32)


# --- polygon geometry -------------------------------------------------------------------------------------------

SQUARE = np.array([[0, 0], [2, 0], [2, 2], [0, 2]], dtype=np.float64)


def raster_iou(a: np.ndarray, b: np.ndarray, step: float = 0.005) -> float:
    """IoU of two convex polygons estimated on a fine grid of sample points (half-plane tests)."""
    lo = np.minimum(a.min(0), b.min(0))
    hi = np.maximum(a.max(0), b.max(0))
    xs, ys = np.meshgrid(np.arange(lo[0], hi[0], step) + step / 2, np.arange(lo[1], hi[1], step) + step / 2)

    def inside(poly: np.ndarray) -> np.ndarray:
        sign = np.sign(np.sum(poly[:, 0] * np.roll(poly[:, 1], -1) - np.roll(poly[:, 0], -1) * poly[:, 1]))
        result = np.ones(xs.shape, dtype=bool)
        for p, q in zip(poly, np.roll(poly, -1, axis=0)):
            result &= sign * ((q[0] - p[0]) * (ys - p[1]) - (q[1] - p[1]) * (xs - p[0])) >= 0
        return result

    ia, ib = inside(a), inside(b)
    return float((ia & ib).sum() / (ia | ib).sum())


def test_polygon_iou_hand_computed() -> None:
    assert polygon_iou(SQUARE, SQUARE) == pytest.approx(1.0)
    assert polygon_iou(SQUARE, SQUARE + [5, 0]) == 0.0
    assert polygon_iou(SQUARE, SQUARE + [2, 0]) == pytest.approx(0.0)  # touching edges
    assert polygon_iou(SQUARE, SQUARE + [1, 0]) == pytest.approx(1 / 3)  # half of each overlaps: 2 / (4 + 4 - 2)
    assert polygon_iou(SQUARE, SQUARE + [1, 1]) == pytest.approx(1 / 7)
    inner = SQUARE * 0.5 + 0.5
    assert polygon_iou(SQUARE, inner) == pytest.approx(0.25)
    # Orientation of either polygon does not matter.
    assert polygon_iou(SQUARE[::-1], SQUARE + [1, 0]) == pytest.approx(1 / 3)
    assert polygon_iou(SQUARE, (SQUARE + [1, 0])[::-1]) == pytest.approx(1 / 3)
    # Degenerate polygons have no area and so no IoU.
    assert polygon_iou(SQUARE, np.array([[0, 0], [1, 1], [2, 2], [0, 0]])) == 0.0


def test_polygon_iou_rotated_against_rasterisation() -> None:
    a = rect_corners(1.0, 1.0, 2.0, 2.0, 0.0)
    b = rect_corners(1.4, 1.2, 2.5, 1.0, math.radians(30))
    # Square vs the same square turned by 45 degrees about its centre: the octagon of area 8 (sqrt 2 - 1).
    assert polygon_iou(a, rect_corners(1.0, 1.0, 2.0, 2.0, math.pi / 4)) == pytest.approx(
        8 * (math.sqrt(2) - 1) / (8 - 8 * (math.sqrt(2) - 1)))
    assert polygon_iou(a, b) == pytest.approx(raster_iou(a, b), abs=3e-3)
    assert polygon_iou(b, a) == pytest.approx(polygon_iou(a, b))


def test_polygon_area() -> None:
    assert polygon_area(SQUARE) == pytest.approx(4.0)
    assert polygon_area(SQUARE[::-1]) == pytest.approx(4.0)
    rotated = rect_corners(10, 10, 6, 2, 0.7)
    assert polygon_area(rotated) == pytest.approx(12.0)
    stacked = polygon_area(np.stack([SQUARE, rotated]))
    assert stacked.shape == (2,) and np.allclose(stacked, [4.0, 12.0])


# --- decoding ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("theta", [0.0, 0.3, -math.pi / 5])
def test_single_rectangle_decodes_to_itself(theta: float) -> None:
    score, geometry = empty_maps()
    cells = write_rect(score, geometry, 90.0, 80.0, 100.0, 30.0, theta, value=0.9)
    assert cells > 50
    quads, scores = decode(score, geometry)
    assert quads.dtype == np.float32 and scores.dtype == np.float32
    assert quads.shape == (1, 4, 2) and scores.shape == (1,)
    np.testing.assert_allclose(quads[0], rect_corners(90.0, 80.0, 100.0, 30.0, theta), atol=1e-3)
    assert scores[0] == pytest.approx(0.9)


def test_two_separated_rectangles_give_two_quads() -> None:
    score, geometry = empty_maps()
    write_rect(score, geometry, 50.0, 30.0, 70.0, 24.0, 0.0, value=0.9)
    write_rect(score, geometry, 120.0, 120.0, 60.0, 20.0, 0.2, value=0.99)
    quads, scores = decode(score, geometry)
    assert quads.shape == (2, 4, 2)
    # Highest mean score first.
    np.testing.assert_allclose(scores, [0.99, 0.9], atol=1e-6)
    np.testing.assert_allclose(quads[0], rect_corners(120.0, 120.0, 60.0, 20.0, 0.2), atol=1e-3)
    np.testing.assert_allclose(quads[1], rect_corners(50.0, 30.0, 70.0, 24.0, 0.0), atol=1e-3)


def test_overlapping_rectangles_merge_into_one() -> None:
    score, geometry = empty_maps()
    write_rect(score, geometry, 70.0, 60.0, 80.0, 24.0, 0.0)
    write_rect(score, geometry, 80.0, 62.0, 80.0, 24.0, 0.0)  # IoU well above 0.2
    quads, _ = decode(score, geometry)
    assert quads.shape == (1, 4, 2)
    centre = quads[0].mean(axis=0)
    assert 70.0 < centre[0] < 80.0 and 60.0 <= centre[1] <= 62.0
    # Without merging (threshold 1) every distinct box would survive: the first row of B differs from A.
    assert len(decode(score, geometry, nms_threshold=1.0)[0]) >= 2


def test_low_scores_decode_to_nothing() -> None:
    score, geometry = empty_maps()
    write_rect(score, geometry, 90.0, 80.0, 100.0, 30.0, 0.0, value=0.5)
    quads, scores = decode(score, geometry, score_threshold=0.8)
    assert quads.shape == (0, 4, 2) and scores.shape == (0,)
    assert quads.dtype == np.float32 and scores.dtype == np.float32
    assert len(decode(score, geometry, score_threshold=0.4)[0]) == 1


def test_decode_rejects_mismatched_maps() -> None:
    score, geometry = empty_maps()
    with pytest.raises(ValueError, match="one grid"):
        decode(score, geometry[:, :-1])
    with pytest.raises(ValueError, match="one grid"):
        decode(score[None], geometry)


# --- model and losses (torch) -----------------------------------------------------------------------------------

@pytest.fixture
def torch():
    """torch, or a skip without it; one intra-op thread for these tiny tensors, which keeps the file fast and
    steady on a busy 2-core runner (OpenMP workers waiting on a taken core cost seconds per step there)."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield torch
    torch.set_num_threads(threads)


def _targets(torch, h: int = 16, w: int = 16, batch: int = 2):
    score = np.zeros((batch, 1, h, w), np.float32)
    geometry = np.zeros((batch, 5, h, w), np.float32)
    write_rect(score[0, 0], geometry[0], 30.0, 24.0, 40.0, 16.0, 0.1, value=1.0)
    write_rect(score[-1, 0], geometry[-1], 36.0, 40.0, 28.0, 12.0, -0.2, value=1.0)
    mask = np.ones_like(score)
    return torch.from_numpy(score), torch.from_numpy(geometry), torch.from_numpy(mask)


@pytest.mark.parametrize("size", [(256, 256), (320, 416)])
def test_east_output_shapes_and_ranges(size: tuple[int, int], torch) -> None:
    from export.models.east import EAST

    torch.manual_seed(0)
    model = EAST(pretrained=False).eval()
    with torch.no_grad():
        score, geometry = model(torch.randn(1, 3, *size))
    h, w = size[0] // 4, size[1] // 4
    assert score.shape == (1, 1, h, w) and geometry.shape == (1, 5, h, w)
    assert float(score.min()) >= 0.0 and float(score.max()) <= 1.0
    assert float(geometry[:, :4].min()) >= 0.0 and float(geometry[:, :4].max()) <= model.geo_scale
    assert float(geometry[:, 4].abs().max()) <= math.pi / 4
    with pytest.raises(ValueError, match="multiples of 32"):
        model(torch.randn(1, 3, 100, 128))


def test_east_backbone_matches_efficientnet_padding(torch) -> None:
    """The static SAME padding gives the very features of the size-dependent Conv2dSame on multiples of 32."""
    import torch.nn.functional as F

    from export.models.east import EAST, FEATURE_BLOCKS, StaticSameConv2d
    from export.models.efficientnet_lite import Conv2dSame, EfficientNetLite0

    torch.manual_seed(0)
    reference = EfficientNetLite0().eval()
    model = EAST(reference).eval()
    assert isinstance(model.stem, StaticSameConv2d) and isinstance(model.blocks[1]._depthwise_conv, StaticSameConv2d)
    assert type(reference._blocks[1]._depthwise_conv) is Conv2dSame  # the caller's backbone is left alone
    for size in ((64, 96), (96, 32)):
        x = torch.randn(1, 3, *size)
        with torch.no_grad():
            y = F.relu6(reference._bn0(reference._conv_stem(x)))
            expected = []
            for i, block in enumerate(reference._blocks):
                y = block(y)
                if i in FEATURE_BLOCKS:
                    expected.append(y)
            got = model.features(x)
        assert [tuple(t.shape[1:]) for t in got] == [
            (24, size[0] // 4, size[1] // 4), (40, size[0] // 8, size[1] // 8),
            (112, size[0] // 16, size[1] // 16), (320, size[0] // 32, size[1] // 32)]
        for g, e in zip(got, expected):
            assert torch.equal(g, e)


def test_east_freeze_stages(torch) -> None:
    from export.models.east import EAST

    model = EAST(pretrained=False, freeze_stages=2).train()
    assert not any(p.requires_grad for p in model.stem.parameters())
    assert not any(p.requires_grad for b in model.blocks[:3] for p in b.parameters())
    assert all(p.requires_grad for b in model.blocks[3:] for p in b.parameters())
    assert all(p.requires_grad for p in model.merge4.parameters())
    assert not model.stem_bn.training and not model.blocks[2]._bn2.training
    assert model.blocks[3]._bn2.training and model.merge4.reduce[1].training
    with pytest.raises(ValueError):
        EAST(pretrained=False, freeze_stages=6)


@pytest.mark.parametrize("score_loss", ["dice", "balanced_ce"])
def test_losses_on_hand_made_maps(score_loss: str, torch) -> None:
    from export.text.losses import east_loss

    score, geometry, mask = _targets(torch)
    assert float(score.sum()) > 20

    total, parts = east_loss(score, geometry, score, geometry, mask, score_loss=score_loss)
    assert parts["geometry"] == pytest.approx(0.0, abs=1e-6) and parts["score"] < 1e-3
    assert float(total) == pytest.approx(parts["total"])

    shifted = geometry.clone()
    shifted[:, 3] += 6.0  # the box moves 6 px left: d_left grows, d_right shrinks
    shifted[:, 1] -= 6.0
    _, moved = east_loss(score, shifted, score, geometry, mask, score_loss=score_loss)
    assert moved["aabb"] > 0.1 and moved["angle"] == pytest.approx(0.0, abs=1e-6)
    turned = geometry.clone()
    turned[:, 4] += 0.3
    _, rotated = east_loss(score, turned, score, geometry, mask, score_loss=score_loss)
    assert rotated["angle"] == pytest.approx(1 - math.cos(0.3), rel=1e-4)
    assert rotated["geometry"] == pytest.approx(10 * (1 - math.cos(0.3)), rel=1e-4)

    wrong_score = 1.0 - score
    _, flipped = east_loss(wrong_score.clamp(0.01, 0.99), geometry, score, geometry, mask, score_loss=score_loss)
    assert flipped["score"] > 0.5

    # Masked cells are ignored: garbage predicted there (score and geometry) changes nothing.
    masked = mask.clone()
    masked[0, :, :, :4] = 0.0
    garbage_geo, garbage_score = geometry.clone(), score.clone()
    garbage_geo[0, :, :, :4] = torch.rand_like(garbage_geo[0, :, :, :4]) * 300.0
    garbage_score[0, :, :, :4] = 1.0 - garbage_score[0, :, :, :4]
    _, ignored = east_loss(garbage_score, garbage_geo, score, geometry, masked, score_loss=score_loss)
    assert ignored["geometry"] == pytest.approx(0.0, abs=1e-6) and ignored["score"] < 1e-3


def test_loss_without_text_is_finite_and_differentiable(torch) -> None:
    from export.text.losses import east_loss

    score = torch.zeros(1, 1, 8, 8)
    geometry = torch.full((1, 5, 8, 8), float("nan"))  # undefined outside text: must not leak in
    pred_score = torch.full((1, 1, 8, 8), 0.3, requires_grad=True)
    pred_geo = torch.full((1, 5, 8, 8), 5.0, requires_grad=True)
    total, parts = east_loss(pred_score, pred_geo, score, geometry, torch.ones_like(score), score_loss="balanced_ce")
    total.backward()
    assert math.isfinite(float(total.detach())) and parts["geometry"] == 0.0
    assert torch.isfinite(pred_geo.grad).all() and torch.isfinite(pred_score.grad).all()
    with pytest.raises(ValueError, match="score_loss"):
        east_loss(pred_score, pred_geo, score, geometry, torch.ones_like(score), score_loss="focal")


def test_short_optimisation_lowers_the_loss(torch) -> None:
    from export.models.east import EAST
    from export.text.losses import east_loss

    torch.manual_seed(0)
    model = EAST(pretrained=False, freeze_stages=5).train()  # decoder only: the loop stays well under a second
    image = torch.randn(2, 3, 64, 64)
    score, geometry, mask = _targets(torch)
    optimiser = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=2e-3)
    losses = []
    for _ in range(20):
        optimiser.zero_grad()
        total, _ = east_loss(*model(image), score, geometry, mask)
        total.backward()
        optimiser.step()
        losses.append(float(total.detach()))
    assert all(math.isfinite(v) for v in losses)
    assert np.mean(losses[-3:]) < 0.7 * np.mean(losses[:3])
