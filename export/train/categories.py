"""Training categories for MANet's classification head.

A catalogue's `group` column names product identities and is used as it is (one image per product is fine:
store-like augmentation makes the views). A catalogue with titles only (no group column) gets categories the way MANet (Wang et al., Sci China Inf Sci 2020) built Perfect-30K's 44: the keywords with the
largest TF-IDF weight over the titles not yet covered become categories, one by one, and each title joins
the keyword it weighs most; titles with none of the keywords are left out of training.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

#: Perfect-30K had 44 categories (Wang et al., Sci China Inf Sci 2020).
DEFAULT_CATEGORIES = 44


def categories_from_groups(groups: Sequence[str], ids: Sequence[str]) -> tuple[list[int], list[str]] | None:
    """Class index per row and class names; None when the catalogue has no groups (each defaulted to its id)."""
    if all(group == id_ for group, id_ in zip(groups, ids)):
        return None
    names = sorted(set(groups))
    index = {name: i for i, name in enumerate(names)}
    return [index[g] for g in groups], names


def categories_from_titles(titles: Sequence[str], count: int = DEFAULT_CATEGORIES) -> tuple[list[int], list[str]]:
    """Class index per title (-1: no keyword) and the keyword of each class."""
    # Letters only: sizes and shade numbers tell products apart, but they do not make categories.
    vectorizer = TfidfVectorizer(token_pattern=r"(?u)\b[^\W\d_]{3,}\b", stop_words="english", sublinear_tf=True)
    tfidf = vectorizer.fit_transform(titles)
    vocabulary = np.asarray(vectorizer.get_feature_names_out())
    # Greedy cover: each next keyword is the one weighing most over the titles no keyword has taken yet,
    # so "SPF" does not become a second sunscreen category while razors get none.
    dense = tfidf.toarray()
    uncovered = np.ones(len(titles), dtype=bool)
    keywords: list[int] = []
    while len(keywords) < min(count, len(vocabulary)) and uncovered.any():
        gain = dense[uncovered].sum(axis=0)
        gain[keywords] = -1.0
        best = int(np.argmax(gain))
        if gain[best] <= 0:
            break
        keywords.append(best)
        uncovered &= dense[:, best] == 0
    per_title = dense[:, keywords]
    labels = np.where(per_title.max(axis=1) > 0, per_title.argmax(axis=1), -1)
    return labels.tolist(), vocabulary[keywords].tolist()
