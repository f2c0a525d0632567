"""Fitting a bundle's confidence model (runtime.confidence.model) at build time, and refitting it in `tune`.

At build there are no labelled store photos, so the model learns from what the catalogue can give: store-like
views of catalogue images (held out: other seeds than the views the adapted projection was fitted on) are photos
of products, each with its known product; generated photos (runtime.confidence.nonproducts) are photos of none.
Both go through the finished bundle exactly as a shopper's photo would (label reading included), so the scores
are the ones queries will see. The product-ness classifier's outputs for these photos are cross-fitted (each
photo scored by a classifier that did not see it), so the match model and the threshold are fitted on honest
values, not on memorised ones. `tune` fits the model again with a store's labelled photos: those of catalogue
products are harder than views, so confidences follow what that store's photos really get; those of products the
catalogue does not hold are the real "not found" cases, which generated photos only stand in for.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_predict

from runtime.bundle import Bundle
from runtime.confidence.model import ConfidenceModel
from runtime.confidence.nonproducts import non_product_photos
from runtime.results import Match
from runtime.retriever import Retriever

from .adapt import store_like_views

#: Seeds of the build's photos are offset from the projection's views and from `eval`'s non-product photos.
VIEW_SEED_OFFSET = 1000
NEGATIVE_SEED_OFFSET = 2000
FOLDS = 5


@dataclass(frozen=True)
class CalibrationOptions:
    """``rows`` catalogue images (a seeded sample) with ``views`` store-like views each; ``non_products`` generated
    photos; the threshold rejects ``reject`` of the (cross-fitted) non-product photos."""

    rows: int = 200
    views: int = 2
    non_products: int = 160
    reject: float = 0.93
    seed: int = 0

    def __post_init__(self) -> None:
        if self.rows < 1 or self.views < 1 or self.non_products < 2 * FOLDS:
            raise ValueError(f"calibration needs rows >= 1, views >= 1 and non_products >= {2 * FOLDS}")
        if not 0.5 <= self.reject < 1.0:
            raise ValueError(f"reject must be within [0.5, 1), got {self.reject}")

    @classmethod
    def recorded(cls, section: dict[str, Any] | None) -> "CalibrationOptions":
        """The options a bundle's confidence model was fitted with (its manifest's ``confidence`` section), so that
        `update` and `tune` fit it again the way the build chose (``build --not-found-photos``); the defaults for a
        bundle that predates the record."""
        recorded = (section or {}).get("options") or {}
        return cls(**{f.name: recorded[f.name] for f in fields(cls) if f.name in recorded})


@dataclass(frozen=True)
class Photos:
    """Photos run through a bundle: descriptors, matches and, per photo, its product (None: shows none)."""

    descriptors: np.ndarray
    matches: list[list[Match]]
    groups: list[str | None]

    @classmethod
    def run(cls, retriever: Retriever, images: Sequence[Any], groups: Sequence[str | None]) -> "Photos":
        descriptors, words = retriever.describe(images)
        return cls(descriptors, retriever.search(descriptors, words=words), list(groups))

    def join(self, other: "Photos") -> "Photos":
        return Photos(np.vstack([self.descriptors, other.descriptors]), self.matches + other.matches,
                      self.groups + other.groups)


def catalogue_images(bundle: Bundle) -> list[tuple[Path, str]]:
    """(image, product) of each catalogue row of an opened bundle: its carried picture where it has one (the
    catalogue's own files may have stayed on the machine that built it), else the image path it was built from
    (relative to the bundle; an absolute one stays as it is, as bench reads it)."""
    return [(bundle.picture(row) or bundle.path / bundle.catalog[row].image, bundle.products[row])
            for row in range(len(bundle.catalog))]


def calibrate(retriever: Retriever, images: Sequence[tuple[Path, str]], options: CalibrationOptions = CalibrationOptions(),
              labelled: Sequence[tuple[Path, str | None]] = ()) -> tuple[ConfidenceModel, dict[str, Any]]:
    """The confidence model of the bundle ``retriever`` serves, from its catalogue ``images`` (path, product),
    generated non-product photos and ``labelled`` store photos (`tune`'s: path and product, None for a photo of a
    product the catalogue does not hold, which then teaches "not found" as the generated photos do), with what to
    record in the manifest."""
    rng = np.random.default_rng(options.seed)
    chosen = np.sort(rng.permutation(len(images))[:options.rows])
    size = max(retriever.bundle.card.input.height, retriever.bundle.card.input.width)
    views, groups = [], []
    for row in chosen:
        path, group = images[int(row)]
        views += store_like_views(str(path), options.views, size, options.seed + VIEW_SEED_OFFSET, int(row))
        groups += [group] * options.views
    products = Photos.run(retriever, views, groups)
    if labelled:  # photos of products not in the catalogue join the non-products (their group is None)
        products = products.join(Photos.run(retriever, [path for path, _ in labelled], [g for _, g in labelled]))
    fakes = [image for _, image in non_product_photos(options.non_products, options.seed + NEGATIVE_SEED_OFFSET)]
    photos = products.join(Photos.run(retriever, fakes, [None] * len(fakes)))
    model, first = fit(photos, options.reject)
    is_product = np.array([g is not None for g in photos.groups])
    info = {
        "fitted": "tune" if labelled else "build", "labelled_photos": len(labelled),
        "labelled_not_in_catalog": sum(group is None for _, group in labelled), "views": len(views),
        "catalog_images": int(len(chosen)), "non_products": len(fakes),
        "seed": options.seed, "reject_target": options.reject, "options": asdict(options),
        "products_kept": round(float((first[is_product] >= model.threshold).mean()), 4),
        "non_products_rejected": round(float((first[~is_product] < model.threshold).mean()), 4),
    }
    return model, info


def fit(photos: Photos, reject: float) -> tuple[ConfidenceModel, np.ndarray]:
    """Fit product-ness, the match model and the threshold on ``photos``; also the first-match confidence of each
    photo (cross-fitted product-ness), which the threshold was chosen on."""
    is_product = np.array([g is not None for g in photos.groups])
    classifier = LogisticRegression(C=1.0, max_iter=5000, class_weight="balanced")
    folds = min(FOLDS, int(is_product.sum()), int((~is_product).sum()))
    if folds < 2:
        raise ValueError("the confidence model needs at least 2 product and 2 non-product photos")
    held_out = cross_val_predict(classifier, photos.descriptors, is_product, cv=folds, method="decision_function")
    classifier.fit(photos.descriptors, is_product)
    weights, bias = classifier.coef_[0].astype(np.float32), float(classifier.intercept_[0])
    scores = [[m.score for m in row] for row in photos.matches]
    features = np.array([(s, logit) for row, logit in zip(scores, held_out) for s in row], dtype=np.float64)
    right = np.array([m.group == g for row, g in zip(photos.matches, photos.groups) for m in row])
    if right.all() or not right.any():
        raise ValueError("the confidence model needs both right and wrong matches to learn from")
    matcher = LogisticRegression(C=1.0, max_iter=5000).fit(features, right)
    draft = ConfidenceModel(weights, bias, (float(matcher.coef_[0][0]), float(matcher.coef_[0][1])),
                            float(matcher.intercept_[0]), 0.5)
    first = np.array([draft.confidences(row[0], logit) if row else 0.0 for row, logit in zip(scores, held_out)])
    negatives = first[~is_product]
    threshold = float(np.quantile(negatives, reject)) if len(negatives) else 0.5
    threshold = round(min(max(threshold, 0.0), 1.0), 6)  # as the manifest records it: the file and the record agree
    return ConfidenceModel(weights, bias, draft.match_coef, draft.match_bias, threshold), first
