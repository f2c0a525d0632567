"""`update --feedback DB` (issue 26): confirmed shopper photos become catalogue images of their products, shown by
the product's own picture; a confirmation against a strong match of another product is held back and listed;
"not here" photos teach the confidence model; vanished products and photos already added are counted, never added."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from runtime import Retriever
from runtime.describe.image import load_image
from runtime.errors import CatalogError
from runtime.feedback.store import Feedback, FeedbackStore, PendingQuery, kept_photo
from runtime.kiosk.thumbnails import CatalogThumbnails
from runtime.bundle import open_bundle

pytest.importorskip("sklearn")
from export.bundle.update import UpdateOptions, update_bundle  # noqa: E402


@pytest.mark.slow  # an update with its refit: about 10 s on 2 cores
def test_confirmed_photos_join_their_products_and_mis_taps_are_held_back(bundle_copy: Path, demo_queries: list[Path],
                                                                          tmp_path: Path) -> None:
    db = tmp_path / "feedback.sqlite"
    feedback = Feedback(FeedbackStore(db))
    photos = [load_image(path) for path in demo_queries[:2]]
    with Retriever.open(bundle_copy, ocr=False) as retriever:
        answers = retriever.answer(photos)
    agree, strong = answers[0].matches[0], answers[1].matches[0]
    other = next(m for m in answers[1].matches if m.group != strong.group)
    feedback.remember("q-agree", "b", photos[0], agree.id, agree.score, agree.confidence)
    feedback.record("q-agree", agree.id, agree.group)
    # the shopper tapped another product than the one the photo matched at confidence 0.97
    feedback.pending.add(PendingQuery("q-mistap", "b", kept_photo(photos[1]), strong.id, strong.score, 0.97, time.time()))
    feedback.record("q-mistap", other.id, other.group)
    feedback.remember("q-none", "b", photos[1], strong.id, strong.score, strong.confidence)
    feedback.record("q-none", None, None)
    feedback.pending.add(PendingQuery("q-gone", "b", kept_photo(photos[1]), None, None, None, time.time()))
    feedback.store.add(feedback.pending.get("q-gone"), "a-product-since-removed", "Gone")

    out = tmp_path / "updated"
    report = update_bundle(bundle_copy, out, feedback=db, options=UpdateOptions(progress=False))
    assert report.added == 1 and report.feedback == {
        "added": 1, "not_here": 1, "product_gone": 1, "already_in_bundle": 0,
        "held_back": [{"query_id": "q-mistap", "confirmed": other.id, "best_match": strong.id, "best_confidence": 0.97}]}
    updated = open_bundle(out)
    # the confidence model was fitted again with the confirmed photo and the "not here" one
    assert (updated.manifest["confidence"]["labelled_photos"], updated.manifest["confidence"]["labelled_not_in_catalog"]) == (2, 1)
    row = next(item for item in updated.catalog if item.id == "feedback-q-agree")
    product = next(item for item in updated.catalog if item.id == agree.id)
    assert (row.title, row.group, row.image, row.fields) == (product.title, product.group, product.image, product.fields)
    thumbnails = CatalogThumbnails(updated.path, updated.catalog, carried=updated.picture)
    assert thumbnails.jpeg(row.id) == thumbnails.jpeg(product.id)  # no shopper photo is ever shown
    stored = feedback.store.rows().__next__().photo
    assert not any(stored in path.read_bytes() for path in out.rglob("*") if path.is_file())
    with Retriever.open(out, ocr=False) as retriever:
        assert retriever.answer([photos[0]])[0].matches[0].group == agree.group
    # the same database again adds nothing
    with pytest.raises(CatalogError, match="no confirmed photo to add"):
        update_bundle(out, tmp_path / "again", feedback=db, options=UpdateOptions(progress=False))
