"""argparse `type=` checks for numeric options, shared by the query-time and offline commands.

A bad number is refused while the command line is parsed, so argparse prints one usage line naming the
option and the accepted range (exit 2) instead of the command failing later with a traceback.
"""
from __future__ import annotations

import argparse
from typing import Callable


def _number(parse: Callable[[str], float], accepts: Callable[[float], bool], wanted: str) -> Callable[[str], float]:
    """A checker that parses with ``parse`` and refuses values ``accepts`` rejects, saying ``wanted``."""

    def check(text: str) -> float:
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}") from None
        if value != value or not accepts(value):  # value != value: NaN, which no range accepts
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text}")
        return value

    return check


def int_at_least(low: int) -> Callable[[str], int]:
    """An integer >= ``low``."""
    return _number(int, lambda v: v >= low, f"an integer >= {low}")  # type: ignore[return-value]


def int_range(low: int, high: int) -> Callable[[str], int]:
    """An integer in [low, high] (a TCP port, a count of backbone stages)."""
    return _number(int, lambda v: low <= v <= high, f"an integer in [{low}, {high}]")  # type: ignore[return-value]


def multiple_of(step: int) -> Callable[[str], int]:
    """A positive multiple of ``step`` (input sizes of models whose feature maps are 1/``step`` of the image)."""
    return _number(int, lambda v: v >= step and v % step == 0,  # type: ignore[return-value]
                   f"a positive multiple of {step}")


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)
positive_float = _number(float, lambda v: 0 < v < float("inf"), "a number > 0")
non_negative_float = _number(float, lambda v: 0 <= v < float("inf"), "a number >= 0")
unit_float = _number(float, lambda v: 0 <= v <= 1, "a number in [0, 1]")
fraction = _number(float, lambda v: 0 < v <= 1, "a number in (0, 1]")
