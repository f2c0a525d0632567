"""ICDAR-style matching on hand-made boxes (no model needed)."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("cv2")

from export.text.evaluate import DetectionScore, match_image  # noqa: E402


def _box(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float32)


def test_exact_and_missed_and_false_boxes() -> None:
    truth = [_box(0, 0, 10, 10), _box(20, 0, 30, 10)]
    detected = [_box(0, 0, 10, 10), _box(50, 50, 60, 60)]
    assert match_image(detected, truth, [False, False]) == (1, 2, 2)


def test_iou_threshold_is_half() -> None:
    truth = [_box(0, 0, 10, 10)]
    assert match_image([_box(0, 0, 10, 6)], truth, [False])[0] == 1  # IoU 0.6
    assert match_image([_box(0, 0, 10, 4)], truth, [False])[0] == 0  # IoU 0.4


def test_one_to_one_matching() -> None:
    truth = [_box(0, 0, 10, 10)]
    detected = [_box(0, 0, 10, 10), _box(0, 0, 10, 9)]
    assert match_image(detected, truth, [False]) == (1, 2, 1)


def test_dont_care_boxes_count_neither_way() -> None:
    truth = [_box(0, 0, 10, 10), _box(20, 0, 30, 10)]
    detected = [_box(0, 0, 10, 10)]
    assert match_image(detected, truth, [True, False]) == (0, 0, 1)


def test_scores() -> None:
    score = DetectionScore(images=3, true_positives=8, detections=10, ground_truth=16)
    assert score.precision == 0.8 and score.recall == 0.5
    assert score.f_score == pytest.approx(2 * 0.8 * 0.5 / 1.3)
    assert DetectionScore(1, 0, 0, 0).f_score == 0.0
