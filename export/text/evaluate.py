"""ICDAR-style detection scores: precision, recall and F at IoU >= 0.5, one-to-one greedy matching.

Ground-truth boxes marked ignore neither count as misses nor make a detection that matches them a false
positive (the ICDAR "don't care" rule).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from runtime.reading.decode import polygon_iou
from runtime.reading.detector import TextDetector

from .labels import read_samples


@dataclass(frozen=True)
class DetectionScore:
    images: int
    true_positives: int
    detections: int
    ground_truth: int

    @property
    def precision(self) -> float:
        return self.true_positives / self.detections if self.detections else 0.0

    @property
    def recall(self) -> float:
        return self.true_positives / self.ground_truth if self.ground_truth else 0.0

    @property
    def f_score(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def to_dict(self) -> dict[str, float]:
        return {"images": self.images, "precision": round(self.precision, 4), "recall": round(self.recall, 4),
                "f_score": round(self.f_score, 4), "true_positives": self.true_positives,
                "detections": self.detections, "ground_truth": self.ground_truth}


def match_image(detected: Sequence[np.ndarray], truth: Sequence[np.ndarray], ignore: Sequence[bool],
                iou_threshold: float = 0.5) -> tuple[int, int, int]:
    """(true positives, counted detections, counted ground truth) for one image."""
    pairs = sorted(
        ((polygon_iou(d, t), i, j) for i, d in enumerate(detected) for j, t in enumerate(truth)),
        reverse=True,
    )
    used_d: set[int] = set()
    used_t: set[int] = set()
    tp = dont_care = 0
    for iou, i, j in pairs:
        if iou < iou_threshold:
            break
        if i in used_d or j in used_t:
            continue
        used_d.add(i)
        used_t.add(j)
        if ignore[j]:
            dont_care += 1
        else:
            tp += 1
    return tp, len(detected) - dont_care, sum(1 for flag in ignore if not flag)


def evaluate_detector(detector: TextDetector, root: Path, limit: int | None = None) -> DetectionScore:
    """Score ``detector`` on a sample directory (labels.jsonl format of DEVELOPERS.md)."""
    samples = read_samples(root)[:limit]
    tp = dets = gts = 0
    for sample in samples:
        boxes = detector.detect(sample.image)
        t, d, g = match_image([b.quad for b in boxes], list(np.asarray(sample.quads, np.float32).reshape(-1, 4, 2)),
                              list(sample.ignore))
        tp, dets, gts = tp + t, dets + d, gts + g
    return DetectionScore(len(samples), tp, dets, gts)
