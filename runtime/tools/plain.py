"""`query`'s plain output: results (runtime.results' shape) as text a person reads without the manual, ending with a
legend of what the columns mean."""
from __future__ import annotations

from typing import Any, Callable

from ..results import STAGE_LABELS

TITLE_WIDTH = 60


def shorten(text: str, width: int = TITLE_WIDTH) -> str:
    """A title cut to ``width`` characters for a line of text (query's table, eval's misses)."""
    return text if len(text) <= width else text[:width - 1].rstrip() + "…"


def _percent(value: float | None) -> str:
    return "  n/a" if value is None else f"{value:5.0%}"


def headline(result: dict[str, Any], threshold: float | None) -> str:
    """One line per photo: its product, "no matching product", or why it could not be used."""
    image = result["image"]
    if result["error"] is not None:
        return f"{image}: cannot be used ({result['error']['message']})"
    if not result["matches"]:
        return f"{image}: no matching product (the catalogue gave no result)"
    first = result["matches"][0]
    if result["found"]:
        sure = f", confidence {first['confidence']:.0%}" if first["confidence"] is not None else ""
        return f"{image}: {shorten(first['product']['title'])}{sure}"
    return (f"{image}: no matching product (the best match's confidence {first['confidence']:.0%} is under the "
            f"bundle's threshold {threshold:.0%}); the nearest items:")


def match_line(match: dict[str, Any]) -> str:
    fields = "  ".join(f"{name}={value}" for name, value in match["product"]["fields"].items())
    return (f"  {match['rank']:>2}  {_percent(match['confidence'])}  {match['score']:6.3f}  {match['stage']:<6}  "
            f"{shorten(match['product']['title'])}  ({match['product']['id']})" + (f"  {fields}" if fields else ""))


def print_results(results: list[dict[str, Any]], threshold: float | None, out: Callable[[str], None] = print) -> None:
    """Each photo's headline, the words read, the matches as a table; then the legend."""
    for result in results:
        out(headline(result, threshold))
        if result["words"]:
            out("      read on the photo: " + " ".join(word["text"] for word in result["words"]))
        if result["matches"]:
            out("   #  sure    score  stage   product (id)")
        for match in result["matches"]:
            out(match_line(match))
    out("")
    out("sure: the calibrated probability that the item is the photo's product"
        + (f"; under {threshold:.0%} for the first item the photo is answered 'no matching product'."
           if threshold is not None else " (this bundle has no confidence model: rebuild it to get one)."))
    out("score: similarity to the item's catalogue image (plus the words read on the label); the list follows the search, "
        "so a lower score may rank higher.")
    out("stage: " + "; ".join(f"{stage} = {label}" for stage, label in STAGE_LABELS.items()) + ".")
