"""Fusion of the label read on the photo with the visual ranking, before the product vote and Algorithm 1.

Each catalogue row's visual similarity gains ``weight * gate * text(product) ** 2``, where text is the label index's
cosine between the words read and the product's text, and the gate (0..1) grows with how much was read and how
confidently: a photo with no words (fruit, a blurred pack) keeps its visual ranking exactly. Squaring lets a label
read in full (cosine near 1: "No. 169 Grège") outweigh a confident visual look-alike, while the partial matches of
a few blurred words (cosines of 0.2-0.5, which on Grocery Store val as often name the wrong product) move little. Rows of the best
text matches that the visual search did not return are added with their exact visual similarity, so a shade the
CNN ranked 200th can still come first when its code is read.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .label_index import LabelIndex, tokens

#: Confidence-weighted words (of 3+ letters or digits) at which the gate opens fully: chosen on Grocery val with the
#: weight (benchmarks/grocery/README.md); 4 keeps every Fruit and Vegetables query of val as it was without text.
GATE_WORDS = 4.0
#: Products of the best text scores whose rows join the visual candidates.
TEXT_CANDIDATES = 3


def gate(words: Sequence[tuple[str, float]]) -> float:
    """How far to trust what was read, 0..1: the confidence summed over words of three or more characters."""
    evidence = sum(confidence for text, confidence in words if any(len(t) >= 3 for t in tokens(text)))
    return min(1.0, evidence / GATE_WORDS)


@dataclass(frozen=True)
class TextEvidence:
    """One photo's text evidence per product of ``labels`` (the squared cosine) and the weight it enters with
    (weight x gate)."""

    labels: LabelIndex
    product_scores: np.ndarray
    weight: float

    @classmethod
    def from_words(cls, labels: LabelIndex, words: Sequence[tuple[str, float]], weight: float) -> "TextEvidence | None":
        """None when nothing that counts was read (the visual ranking then stands as it is)."""
        strength = weight * gate(words)
        if strength <= 0:
            return None
        scores = labels.score(words)
        return cls(labels, scores ** 2, strength) if scores.any() else None

    def apply(self, query: np.ndarray, ids: np.ndarray, scores: np.ndarray, vectors: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
        """The fused ranking (rows, fused scores), best first, of the visual candidates plus the rows of the
        TEXT_CANDIDATES best text matches."""
        best = np.argsort(-self.product_scores, kind="stable")[:TEXT_CANDIDATES]
        extra = [self.labels.rows_of(int(p)) for p in best if self.product_scores[p] > 0]
        if extra:
            rows = np.setdiff1d(np.concatenate(extra), ids)
            if len(rows):
                ids = np.concatenate([ids, rows])
                scores = np.concatenate([scores, np.asarray(vectors[rows] @ query, dtype=scores.dtype)])
        fused = scores + self.weight * self.product_scores[self.labels.row_product[ids]]
        order = np.argsort(-fused, kind="stable")
        return ids[order], fused[order].astype(np.float32)
