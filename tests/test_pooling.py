"""runtime.describe.pooling: R-MAC regions and SR-MAC against a slow, loop-based reference and hand-made cases."""
from __future__ import annotations

import math

import numpy as np
import pytest

from runtime.describe.pooling import DEFAULT_LEVELS, l2_normalize, rmac_regions, saliency_region, srmac


def reference_srmac(X: np.ndarray, S: np.ndarray, levels: int = DEFAULT_LEVELS) -> np.ndarray:
    """SR-MAC written out with plain loops (MANet, Wang et al., Sci China Inf Sci 2020, eqs. 4-7), in float64."""
    n_images, channels, h, w = X.shape
    regions = [tuple(int(v) for v in r) for r in rmac_regions(h, w, levels)]
    out = np.zeros((n_images, channels), dtype=np.float64)
    for n in range(n_images):
        saliency = [[float(S[n, 0, y, x]) for x in range(w)] for y in range(h)]
        mean = sum(sum(row) for row in saliency) / (h * w)
        phi = [0.0] * channels
        for y0, x0, y1, x1 in regions:
            vector = []
            for c in range(channels):
                best = -math.inf
                for y in range(y0, y1):
                    for x in range(x0, x1):
                        best = max(best, float(X[n, c, y, x]))
                vector.append(best)
            cells = (y1 - y0) * (x1 - x0)
            salient = sum(1 for y in range(y0, y1) for x in range(x0, x1) if saliency[y][x] >= mean)
            weight = salient / cells
            norm = math.sqrt(sum(v * v for v in vector))
            if norm > 0:
                vector = [v / norm for v in vector]
            for c in range(channels):
                phi[c] += weight * vector[c]
        norm = math.sqrt(sum(v * v for v in phi))
        out[n] = [v / norm for v in phi] if norm > 0 else phi
    return out


def plain_rmac(X: np.ndarray, levels: int = DEFAULT_LEVELS) -> np.ndarray:
    """R-MAC: sum of L2-normalised region maxima, L2-normalised (every region weight 1)."""
    total = np.zeros(X.shape[:2], dtype=np.float64)
    for y0, x0, y1, x1 in rmac_regions(X.shape[2], X.shape[3], levels):
        region = X[:, :, y0:y1, x0:x1].max(axis=(2, 3)).astype(np.float64)
        total += region / np.linalg.norm(region, axis=1, keepdims=True)
    return total / np.linalg.norm(total, axis=1, keepdims=True)


# --- SR-MAC against the reference ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "batch, channels, h, w",
    [(1, 8, 10, 10), (3, 5, 7, 7), (2, 6, 4, 9), (2, 6, 9, 4), (1, 4, 3, 12), (4, 3, 1, 1), (2, 7, 1, 6), (2, 5, 6, 8)],
    ids=["10x10", "square-batch3", "wide", "tall", "very-wide", "1x1", "one-row", "6x8"],
)
def test_srmac_matches_loop_reference(batch: int, channels: int, h: int, w: int) -> None:
    rng = np.random.default_rng(batch * 1000 + channels * 100 + h * 10 + w)
    X = rng.random((batch, channels, h, w), dtype=np.float32)  # post-activation features are >= 0
    S = rng.random((batch, 1, h, w), dtype=np.float32)
    got = srmac(X, S)
    assert got.shape == (batch, channels)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, reference_srmac(X, S), rtol=0, atol=2e-6)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("levels", [1, 2, 4])
def test_srmac_other_levels_match_reference(levels: int) -> None:
    rng = np.random.default_rng(levels)
    X = rng.random((2, 6, 8, 11), dtype=np.float32)
    S = rng.random((2, 1, 8, 11), dtype=np.float32)
    np.testing.assert_allclose(srmac(X, S, levels), reference_srmac(X, S, levels), atol=2e-6)


def test_srmac_with_sparse_relu_features_matches_reference() -> None:
    # ReLU-like maps: many zeros, some regions entirely zero in every channel (a zero region vector).
    rng = np.random.default_rng(7)
    X = np.maximum(rng.standard_normal((2, 4, 8, 8)).astype(np.float32) - 1.5, 0)
    X[:, :, :4, :4] = 0
    S = rng.random((2, 1, 8, 8), dtype=np.float32)
    got = srmac(X, S)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, reference_srmac(X, S), atol=2e-6)


def test_batch_rows_are_independent() -> None:
    rng = np.random.default_rng(11)
    X = rng.random((5, 6, 7, 9), dtype=np.float32)
    S = rng.random((5, 1, 7, 9), dtype=np.float32)
    together = srmac(X, S)
    one_by_one = np.concatenate([srmac(X[i : i + 1], S[i : i + 1]) for i in range(5)])
    np.testing.assert_allclose(together, one_by_one, atol=1e-6)


# --- hand-made cases --------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [1.0, 0.0, 0.37])
def test_constant_saliency_is_plain_rmac(value: float) -> None:
    rng = np.random.default_rng(3)
    X = rng.random((3, 8, 10, 10), dtype=np.float32)
    S = np.full((3, 1, 10, 10), value, dtype=np.float32)
    np.testing.assert_allclose(srmac(X, S), plain_rmac(X), atol=2e-6)


def test_every_constant_saliency_map_is_salient_everywhere_at_runtime_and_in_training() -> None:
    """One rule on both sides: float32 means of constants such as 0.1 and 0.2 round above the value itself, which
    once left no salient cell and an all-zero descriptor."""
    torch = pytest.importorskip("torch")
    from export.train.losses import binarise_at_mean
    from runtime.describe.pooling import saliency_region

    X = np.random.default_rng(5).random((1, 8, 10, 10), dtype=np.float32)
    for value in np.linspace(0.001, 1.0, 500, dtype=np.float32).tolist() + [0.1, 0.2, 0.3, 0.7]:
        for side in (7, 8, 10, 16):
            S = np.full((1, 1, side, side), value, dtype=np.float32)
            assert saliency_region(S).all(), (value, side)
            assert bool(binarise_at_mean(torch.from_numpy(S)).all()), (value, side)
    for value in (0.1, 0.2):
        S = np.full((1, 1, 10, 10), value, dtype=np.float32)
        np.testing.assert_allclose(srmac(X, S), plain_rmac(X), atol=2e-6)


def test_saliency_only_matters_through_its_mean_threshold() -> None:
    rng = np.random.default_rng(4)
    X = rng.random((2, 5, 6, 6), dtype=np.float32)
    S = rng.random((2, 1, 6, 6), dtype=np.float32)
    np.testing.assert_allclose(srmac(X, S), srmac(X, 0.5 * S + 0.1), atol=1e-6)
    binary = saliency_region(S).astype(np.float32)
    np.testing.assert_allclose(srmac(X, S), srmac(X, binary), atol=1e-6)


def _quadrant_case() -> tuple[np.ndarray, np.ndarray]:
    """4x4 map: channel 0 hot only in the top-left quadrant, channel 1 only in the bottom-right one."""
    X = np.zeros((1, 2, 4, 4), np.float32)
    X[0, 0, :2, :2] = 1.0
    X[0, 1, 2:, 2:] = 1.0
    S = np.zeros((1, 1, 4, 4), np.float32)
    S[0, 0, :2, :2] = 1.0  # saliency covers the top-left quadrant only
    return X, S


def test_top_left_saliency_by_hand() -> None:
    X, S = _quadrant_case()
    # L = 2 on 4x4: the whole map and its four 2x2 quadrants.
    assert sorted(map(tuple, rmac_regions(4, 4, 2).tolist())) == [
        (0, 0, 2, 2), (0, 0, 4, 4), (0, 2, 2, 4), (2, 0, 4, 2), (2, 2, 4, 4)
    ]
    # Weights: whole map 4/16, top-left quadrant 1, the other three 0 (outside the salient area).
    # Unit region vectors: whole (1, 1)/sqrt 2, top-left (1, 0), bottom-right (0, 1), the others zero.
    phi = 0.25 * np.array([1.0, 1.0]) / math.sqrt(2) + 1.0 * np.array([1.0, 0.0]) + 0.0 * np.array([0.0, 1.0])
    expected = phi / np.linalg.norm(phi)
    np.testing.assert_allclose(srmac(X, S, levels=2)[0], expected, atol=1e-6)

    # With uniform saliency both channels count the same.
    uniform = srmac(X, np.ones_like(S), levels=2)[0]
    np.testing.assert_allclose(uniform, [1 / math.sqrt(2)] * 2, atol=1e-6)


def test_top_left_saliency_default_levels_downweights_the_other_corner() -> None:
    X, S = _quadrant_case()
    X = np.repeat(np.repeat(X, 3, axis=2), 3, axis=3)  # 12x12, same layout
    S = np.repeat(np.repeat(S, 3, axis=2), 3, axis=3)
    salient = srmac(X, S)[0]
    uniform = srmac(X, np.ones_like(S))[0]
    assert uniform[0] == pytest.approx(uniform[1], abs=1e-6)  # symmetric without saliency
    assert salient[1] < uniform[1] - 0.1  # the bottom-right channel lost weight
    assert salient[0] > salient[1]
    np.testing.assert_allclose(salient, reference_srmac(X, S)[0], atol=2e-6)


def test_region_wholly_outside_saliency_contributes_nothing() -> None:
    # Channel 1 is hot only in the bottom-right 2x2 corner of an 8x8 map; saliency is the top-left 2x2.
    # Every region that reaches that corner avoids the salient cells except the whole-map region,
    # so channel 1 appears only through the whole-map region (weight 4/64).
    X = np.zeros((1, 2, 8, 8), np.float32)
    X[0, 0] = 1.0
    X[0, 1, 6:, 6:] = 1.0
    S = np.zeros((1, 1, 8, 8), np.float32)
    S[0, 0, :2, :2] = 1.0
    regions = rmac_regions(8, 8, 3)
    got = srmac(X, S)[0]
    phi = np.zeros(2)
    for y0, x0, y1, x1 in regions:
        weight = (min(y1, 2) - y0) * (min(x1, 2) - x0) / ((y1 - y0) * (x1 - x0)) if y0 < 2 and x0 < 2 else 0.0
        hot = y1 > 6 and x1 > 6
        vector = np.array([1.0, 1.0]) / math.sqrt(2) if hot else np.array([1.0, 0.0])
        phi += weight * vector
    np.testing.assert_allclose(got, phi / np.linalg.norm(phi), atol=1e-6)


def test_1x1_map_is_the_normalised_feature_vector() -> None:
    X = np.array([3.0, 4.0, 0.0], np.float32).reshape(1, 3, 1, 1)
    S = np.full((1, 1, 1, 1), 0.2, np.float32)
    np.testing.assert_allclose(srmac(X, S)[0], [0.6, 0.8, 0.0], atol=1e-7)


def test_l2_normalize_keeps_zero_rows() -> None:
    got = l2_normalize(np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(got, [[0.6, 0.8], [0.0, 0.0]])


# --- rmac_regions -----------------------------------------------------------------------------------------

SHAPES = [(h, w) for h in range(1, 25) for w in range(1, 25) if max(h, w) <= 4 * min(h, w)]


def _coverage(regions: np.ndarray, h: int, w: int) -> np.ndarray:
    covered = np.zeros((h, w), bool)
    for y0, x0, y1, x1 in regions:
        covered[y0:y1, x0:x1] = True
    return covered


@pytest.mark.parametrize("levels", [1, 2, 3, 4])
def test_regions_are_square_inside_and_cover_the_map(levels: int) -> None:
    for h, w in SHAPES:
        regions = rmac_regions(h, w, levels)
        assert regions.ndim == 2 and regions.shape[1] == 4 and regions.dtype.kind == "i"
        y0, x0, y1, x1 = regions.T
        assert (y0 >= 0).all() and (x0 >= 0).all() and (y1 <= h).all() and (x1 <= w).all(), (h, w, levels)
        assert (y1 > y0).all() and (x1 > x0).all(), (h, w, levels)
        assert ((y1 - y0) == (x1 - x0)).all(), (h, w, levels)  # square
        assert len(np.unique(regions, axis=0)) == len(regions)  # no duplicates
        assert _coverage(regions, h, w).all(), (h, w, levels)


@pytest.mark.parametrize("h, w", [(1, 10), (10, 1), (1, 6), (2, 9)])
def test_regions_cover_elongated_maps_at_default_levels(h: int, w: int) -> None:
    assert _coverage(rmac_regions(h, w), h, w).all()


def test_region_count_10x10_three_levels() -> None:
    regions = rmac_regions(10, 10, 3)
    assert len(regions) == 14  # 1 + 4 + 9
    sides = sorted(set((regions[:, 2] - regions[:, 0]).tolist()))
    assert sides == [5, 6, 10]  # floor(2 * 10 / (l + 1)) for l = 3, 2, 1


@pytest.mark.parametrize("side", [1, 2, 5, 10, 13, 20])
def test_level_one_of_a_square_map_is_the_whole_map(side: int) -> None:
    np.testing.assert_array_equal(rmac_regions(side, side, 1), [[0, 0, side, side]])
    assert [0, 0, side, side] in rmac_regions(side, side, 3).tolist()


def test_wide_and_tall_maps_are_transposes() -> None:
    wide = rmac_regions(6, 15, 3)
    tall = rmac_regions(15, 6, 3)
    swapped = wide[:, [1, 0, 3, 2]]
    assert sorted(map(tuple, swapped.tolist())) == sorted(map(tuple, tall.tolist()))
    assert len(wide) > len(rmac_regions(6, 6, 3))  # the longer side gets extra regions


def test_1x1_map_has_one_region() -> None:
    np.testing.assert_array_equal(rmac_regions(1, 1, 3), [[0, 0, 1, 1]])


@pytest.mark.parametrize("h, w, levels", [(0, 5, 3), (5, 0, 3), (-1, 4, 3), (4, 4, 0)])
def test_bad_region_arguments(h: int, w: int, levels: int) -> None:
    with pytest.raises(ValueError):
        rmac_regions(h, w, levels)


@pytest.mark.parametrize(
    "x_shape, s_shape",
    [
        ((2, 4, 5, 5), (2, 2, 5, 5)),  # S has two channels
        ((2, 4, 5, 5), (3, 1, 5, 5)),  # batch sizes differ
        ((2, 4, 5, 5), (2, 1, 5, 6)),  # grids differ
        ((4, 5, 5), (1, 5, 5)),  # no batch axis
        ((2, 4, 5, 5), (2, 5, 5)),  # S without its channel axis
        ((2, 4, 0, 5), (2, 1, 0, 5)),  # empty map
    ],
)
def test_bad_shapes_raise_value_error(x_shape, s_shape) -> None:
    with pytest.raises(ValueError):
        srmac(np.ones(x_shape, np.float32), np.ones(s_shape, np.float32))
