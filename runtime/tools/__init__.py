"""Measuring and checking: bench, eval and its metrics, user tables."""
