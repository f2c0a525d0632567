"""Categories for MANet training: from groups, or from TF-IDF keywords of titles (Wang et al., Sci China Inf Sci 2020)."""
from __future__ import annotations

import pytest

pytest.importorskip("sklearn")

from export.train.categories import categories_from_groups, categories_from_titles  # noqa: E402


def test_groups_are_used_as_they_are() -> None:
    labels, names = categories_from_groups(["milk", "juice", "milk"], ["1", "2", "3"])
    assert names == ["juice", "milk"] and labels == [1, 0, 1]
    labels, names = categories_from_groups(["a", "b"], ["1", "2"])  # one image per product
    assert labels == [0, 1]
    assert categories_from_groups(["1", "2", "3"], ["1", "2", "3"]) is None  # no group column


def test_keyword_categories_group_titles_by_their_strongest_keyword() -> None:
    titles = [
        "Dior Rouge lipstick No. 169", "Chanel lipstick Rouge Allure 4.5 g", "MAC matte lipstick Ruby",
        "Nivea sunscreen SPF 50", "La Roche sunscreen SPF 30 fluid", "Garnier sunscreen spray SPF 50",
        "Gillette razor Fusion 5", "Wilkinson razor Hydro", "1234 5678",
    ]
    labels, keywords = categories_from_titles(titles, count=3)
    assert len(keywords) == 3 and {"lipstick", "razor"} <= set(keywords)
    assert {"sunscreen", "spf"} & set(keywords)  # equally strong for the same three titles
    members = sorted(sorted(i for i, label in enumerate(labels) if label == c) for c in range(3))
    assert members == [[0, 1, 2], [3, 4, 5], [6, 7]]
    assert labels[8] == -1  # digits only: no keyword, left out
