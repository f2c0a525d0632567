"""Retrieval metrics of the Perfect-500K challenge.

AP@7 = (1 / min(m, 7)) * sum_k P(k) rel(k) over the first 7 results, m = catalogue items relevant to
the query (here: in the query's product group).
"""
from __future__ import annotations

from typing import Sequence


def average_precision_at_k(relevant: Sequence[bool], m: int, k: int = 7) -> float:
    """AP@k of one ranked list given which results are relevant and how many relevant items exist."""
    if m <= 0:
        return 0.0
    hits, total = 0, 0.0
    for rank, is_relevant in enumerate(relevant[:k], start=1):
        if is_relevant:
            hits += 1
            total += hits / rank  # P(rank) * rel(rank)
    return total / min(m, k)


def mean(values: Sequence[float]) -> float:
    return float(sum(values) / len(values)) if values else 0.0
