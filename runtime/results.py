"""The result types (``Match``, ``Answer``) and the one shape of a photo's result, shared by `query --json`, the
kiosk's API and the Python API's ``Answer.to_dict()``; runtime/schema/result.schema.json is its JSON Schema for
integrators (a test holds the two together). Why the types live here: the retriever makes them and this module
writes them, so both import this one and neither imports the other.

A result says whether the photo shows a catalogue product (``found``) and how sure that is (``confidence``), then
lists the matches in the search's order: ``rank`` 1 first. The order is the search's, not the score's: the product
vote and the text-refined stage (``stage``) may rank a lower similarity ``score`` above a higher one, which is why
each match carries its own calibrated ``confidence``.
"""
from __future__ import annotations

import json
from functools import lru_cache
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from .errors import ImageError, ImageTooLargeError, UnsupportedImageError
from .search.label_index import title_matches

if TYPE_CHECKING:
    from .reading.reader import Word  # annotations only: the reader loads ONNX Runtime

SCHEMA_FILE = Path(__file__).resolve().parent / "schema" / "result.schema.json"
#: Version of the result shape; a change that removes or renames a field bumps it.
SCHEMA_VERSION = 1
#: What ``stage`` values mean, for people (the kiosk's badge, `query`'s legend).
STAGE_LABELS = {"visual": "looks like it", "text": "title related to the best visual matches",
                "barcode": "the barcode on the photo names it"}


@dataclass(frozen=True)
class Match:
    """One result: the catalogue item, its similarity to the photo, which stage found it ("visual": the first-stage
    top-k; "text": the text-refined second stage; "barcode": the GTIN of the barcode on the photo) and ``confidence``, the bundle's calibrated probability that it is
    the photo's product (None for a bundle without a confidence model). The list is ordered by the search (the
    product vote and the text stage may put a lower score above a higher one), not by score. ``fields``: the
    catalogue CSV's other columns for this item (price, SKU, URL, ...), as text, in the CSV's order."""

    id: str
    title: str
    score: float
    stage: str
    group: str
    image: str
    confidence: float | None = None
    fields: dict[str, str] = field(default_factory=dict, hash=False)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Answer:
    """What a photo gets: the matches, the words read on its label (empty when reading is off), whether it shows a
    catalogue product at all (``found``: its first match's confidence reaches the bundle's threshold; without a
    confidence model, whether there is any match) and the milliseconds it took (a batch's time shared equally)."""

    matches: list[Match]
    words: list[Word]
    found: bool = True
    elapsed_ms: float = 0.0

    @property
    def confidence(self) -> float | None:
        """The first match's confidence: how sure the answer is as a whole."""
        return self.matches[0].confidence if self.matches else None

    def to_dict(self) -> dict[str, Any]:
        """This answer in the documented result shape (runtime.results, schema/result.schema.json)."""
        return result_dict(self)


def match_dict(rank: int, match: Match, read: list[str], image_url: str | None = None) -> dict[str, Any]:
    """One match: rank, calibrated confidence, similarity score, stage, the product and which title words were read."""
    product = {"id": match.id, "title": match.title, "group": match.group, "image": match.image,
               "fields": dict(match.fields)}
    out: dict[str, Any] = {
        "rank": rank,
        "confidence": None if match.confidence is None else round(float(match.confidence), 4),
        "score": round(float(match.score), 4),
        "stage": match.stage,
        "product": product,
        "title_read": [list(span) for span in title_matches(match.title, read)],
    }
    if image_url is not None:
        out["image_url"] = image_url
    return out


def result_dict(answer: Answer, image: str | None = None,
                image_url: Callable[[Match], str] | None = None) -> dict[str, Any]:
    """A photo's result: ``image`` names the photo (a path, or an upload's file name); ``image_url`` gives a match's
    picture URL where one is served (the kiosk)."""
    read = [word.text for word in answer.words]
    return {
        "image": image,
        "found": answer.found,
        "confidence": None if answer.confidence is None else round(float(answer.confidence), 4),
        "elapsed_ms": round(answer.elapsed_ms, 2),
        "matches": [match_dict(rank, match, read, image_url(match) if image_url else None)
                    for rank, match in enumerate(answer.matches, start=1)],
        "words": [word.to_dict() for word in answer.words],
        "error": None,
    }


#: The error code of an unusable photo, by kind: checked in order, the most specific first (the kiosk maps each
#: to its HTTP status).
IMAGE_ERROR_CODES: tuple[tuple[type[ImageError], str], ...] = (
    (ImageTooLargeError, "image_too_large"), (UnsupportedImageError, "unsupported_image"), (ImageError, "unreadable_image"),
)


def image_error_code(error: ImageError) -> str:
    return next(code for kind, code in IMAGE_ERROR_CODES if isinstance(error, kind))


def failed_result(image: str, error: ImageError) -> dict[str, Any]:
    """The result of a photo that could not be used (a batch goes on with the others)."""
    return {"image": image, "found": False, "confidence": None, "elapsed_ms": 0.0, "matches": [], "words": [],
            "error": {"code": image_error_code(error), "message": str(error)}}


def results_document(results: list[dict[str, Any]], threshold: float | None) -> dict[str, Any]:
    """What `query --json` prints: the schema version, the bundle's not-found threshold and one result per photo."""
    return {"schema_version": SCHEMA_VERSION, "threshold": threshold, "results": results}


@lru_cache(maxsize=1)
def result_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a results document, with ``$defs`` result, match, product and word."""
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
