"""runtime.tools.metrics: AP@7 (Perfect-500K) worked out by hand."""
from __future__ import annotations

import pytest

from runtime.tools.metrics import average_precision_at_k, mean

T, F = True, False


@pytest.mark.parametrize(
    "relevant, m, expected",
    [
        ([T, F, T, F, F, F, F], 2, (1 + 2 / 3) / 2),  # relevant at ranks 1 and 3
        ([T, F, F, F, F, F, F], 1, 1.0),
        ([F, T, F, F, F, F, F], 1, 1 / 2),
        ([F, F, F, F, F, F, T], 1, 1 / 7),
        ([F, T, F, T, F, F, F], 3, (1 / 2 + 2 / 4) / 3),  # one relevant item never retrieved
        ([T, T, T, T, T, T, T], 7, 1.0),
        ([T, T, T, T, T, T, T], 20, 1.0),  # m > 7 divides by 7: a perfect list still scores 1
        ([T, F, T, F, F, F, F], 20, (1 + 2 / 3) / 7),
        ([F, F, F, F, F, F, F], 4, 0.0),
        ([], 3, 0.0),
        ([T, T], 5, (1 + 1) / 5),  # a list shorter than 7
    ],
)
def test_ap_at_7_by_hand(relevant, m, expected) -> None:
    assert average_precision_at_k(relevant, m) == pytest.approx(expected, abs=1e-12)


def test_only_the_first_seven_results_count() -> None:
    eight = [F, F, F, F, F, F, F, T]
    assert average_precision_at_k(eight, 1) == 0.0
    assert average_precision_at_k([T, F, F, F, F, F, F, T, T], 3) == pytest.approx(1 / 3)


@pytest.mark.parametrize("m", [0, -1])
def test_no_relevant_items_gives_zero(m: int) -> None:
    assert average_precision_at_k([T, T, F], m) == 0.0


def test_other_cutoff() -> None:
    assert average_precision_at_k([F, T, T], 5, k=2) == pytest.approx((1 / 2) / 2)
    assert average_precision_at_k([T, F, F, T], 2, k=4) == pytest.approx((1 + 2 / 4) / 2)


def test_mean() -> None:
    assert mean([0.5, 1.0, 0.0]) == pytest.approx(0.5)
    assert mean([]) == 0.0
    assert isinstance(mean([1, 2]), float)
