"""A bundle's confidence model: how sure a match is, and whether the photo shows a catalogue product at all.

Similarity scores alone cannot say "not found": a plain gradient gets 0.6 against a catalogue whose real matches
score 0.85-0.96, and a hard store photo can score lower still. Two learned parts, both fitted per bundle at build
time (export.bundle.confidence) on store-like views of its catalogue images and on generated non-product photos
(runtime.confidence.nonproducts), make it honest:

- *product-ness*: a linear classifier on the photo's descriptor (in the index's space) that tells a product
  photo from a non-product one, whatever it matches;
- *match confidence*: P(match is the photo's product) as a logistic function of the match's score and the photo's
  product-ness logit: calibrated on the build's views, refined by `tune` on a store's labelled photos.

A photo is *found* when its first match's confidence reaches the bundle's threshold. The file is one npz (no
pickle) read and written here only; the manifest's ``confidence`` section names it and records how it was fitted.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BundleError

CONFIDENCE_FILE = "confidence.npz"


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free logistic


@dataclass(frozen=True)
class ConfidenceModel:
    """Product-ness weights (D,) and bias; match coefficients (score, product-ness logit) and bias; threshold."""

    product_weights: np.ndarray
    product_bias: float
    match_coef: tuple[float, float]
    match_bias: float
    threshold: float

    def __post_init__(self) -> None:
        weights = np.asarray(self.product_weights)
        if weights.ndim != 1 or not weights.size or not np.isfinite(weights).all():
            raise ValueError(f"product weights must be a finite vector, got shape {weights.shape}")
        numbers = (self.product_bias, *self.match_coef, self.match_bias, self.threshold)
        if len(self.match_coef) != 2 or not np.isfinite(numbers).all():
            raise ValueError("confidence coefficients must be finite, with two match coefficients")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be within [0, 1], got {self.threshold}")

    @property
    def dim(self) -> int:
        return int(np.asarray(self.product_weights).shape[0])

    def product_logit(self, descriptors: np.ndarray) -> np.ndarray:
        """(N,) log-odds that each photo (its descriptor, index space) shows a product rather than none."""
        return np.asarray(descriptors, dtype=np.float32) @ np.asarray(self.product_weights, np.float32) + self.product_bias

    def confidences(self, scores: np.ndarray, product_logit: np.ndarray | float) -> np.ndarray:
        """P(match is right) for match ``scores`` of photos with the given product-ness logits (broadcast)."""
        a, b = self.match_coef
        return _sigmoid(a * np.asarray(scores, dtype=np.float64) + b * np.asarray(product_logit, dtype=np.float64)
                        + self.match_bias)

    def found(self, first_confidence: float) -> bool:
        """Whether a photo whose first match has this confidence shows a catalogue product."""
        return bool(first_confidence >= self.threshold)

    def save(self, path: Path) -> None:
        np.savez(path, product_weights=np.asarray(self.product_weights, np.float32),
                 product_bias=np.float64(self.product_bias), match_coef=np.asarray(self.match_coef, np.float64),
                 match_bias=np.float64(self.match_bias), threshold=np.float64(self.threshold))

    @classmethod
    def load(cls, path: Path, dim: int) -> "ConfidenceModel":
        """Read and check ``path`` against the bundle's descriptor size; BundleError naming the problem."""
        try:
            with np.load(path, allow_pickle=False) as data:
                model = cls(np.array(data["product_weights"], np.float32), float(data["product_bias"]),
                            tuple(float(c) for c in data["match_coef"]), float(data["match_bias"]),  # type: ignore[arg-type]
                            float(data["threshold"]))
        except (OSError, KeyError, ValueError, TypeError) as exc:
            raise BundleError(f"{path.name}: not a valid confidence model ({exc})") from None
        if model.dim != dim:
            raise BundleError(f"{path.name}: weighs {model.dim}-d descriptors, the bundle's are {dim}-d")
        return model

    def section(self, fitted: dict[str, Any]) -> dict[str, Any]:
        """The manifest's ``confidence`` section: the file, the threshold and how both were fitted."""
        return {"file": CONFIDENCE_FILE, "threshold": float(self.threshold), **fitted}
