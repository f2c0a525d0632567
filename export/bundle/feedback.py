"""`update --feedback DB`: the photos shoppers confirmed at the kiosk become catalogue images of their products.

A confirmed photo is the store's own view of a product, exactly what a catalogue-only bundle lacks. Each becomes a
row ``feedback-<query_id>`` of the confirmed product (its title, group and fields), described from the photo, but
shown by the product's own catalogue picture: a kiosk never puts one shopper's photo in front of another, and the
bundle keeps no shopper photo (the photos are staged in a temporary folder and deleted after the update).
A confirmation that contradicts a strong visual match of another product (the answer's first match, of another
group, at calibrated confidence HOLD_BACK_CONFIDENCE or more) is held back and listed: a shopper's mis-tap must not
put a photo of one product into another's gallery. The bundle's confidence model is then fitted again with the
added photos as store photos of their products and the "not here" photos as photos of no catalogue product, as
`tune` fits it with labelled photos.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from runtime.bundle import Bundle
from runtime.feedback.store import FeedbackStore

from .catalog import CatalogRow

#: The answer's first match, of another product, at this calibrated confidence or more outweighs the shopper's tap.
HOLD_BACK_CONFIDENCE = 0.9
ID_PREFIX = "feedback-"


@dataclass
class FeedbackRows:
    """The rows feedback adds, where each is shown from (parent bundle row), and what was left out and why."""

    rows: list[CatalogRow] = field(default_factory=list)
    shown: dict[str, int] = field(default_factory=dict)
    held_back: list[dict] = field(default_factory=list)
    #: photos the shoppers said show no product of the catalogue: the confidence model's negatives
    not_here: list[Path] = field(default_factory=list)
    gone: int = 0
    already: int = 0

    def to_dict(self) -> dict:
        return {"added": len(self.rows), "held_back": self.held_back, "not_here": len(self.not_here),
                "product_gone": self.gone, "already_in_bundle": self.already}


def feedback_rows(bundle: Bundle, store: FeedbackStore, staging: Path) -> FeedbackRows:
    """The confirmed photos of ``store`` as rows to add to ``bundle``, their photos written into ``staging``."""
    row_of = {item.id: row for row, item in enumerate(bundle.catalog)}
    out = FeedbackRows()
    for feedback in store.rows():
        photo = staging / f"{feedback.query_id}.jpg"
        if feedback.product_id is None:
            photo.write_bytes(feedback.photo)
            out.not_here.append(photo)
            continue
        row_id = ID_PREFIX + feedback.query_id
        if row_id in row_of:
            out.already += 1
            continue
        if feedback.product_id not in row_of:
            out.gone += 1
            continue
        item = bundle.catalog[row_of[feedback.product_id]]
        best = bundle.catalog[row_of[feedback.best_id]] if feedback.best_id in row_of else None
        if (best is not None and best.group != item.group
                and (feedback.best_confidence or 0.0) >= HOLD_BACK_CONFIDENCE):
            out.held_back.append({"query_id": feedback.query_id, "confirmed": item.id, "best_match": best.id,
                                  "best_confidence": round(float(feedback.best_confidence), 4)})
            continue
        photo.write_bytes(feedback.photo)
        out.rows.append(CatalogRow(0, row_id, photo, item.title, item.group, dict(item.fields), item.text))
        out.shown[row_id] = row_of[feedback.product_id]
    return out
