"""Query views (runtime.describe.views): a query photo is its crop and a central zoom, their SR-MAC descriptors summed
before the bundle's projection; the catalogue side keeps one view; bundles without views answer as before."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from runtime.backends import open_backend
from runtime.bundle import MANIFEST, open_bundle
from runtime.describe.embedder import Embedder
from runtime.describe.pooling import l2_normalize
from runtime.describe.views import QueryViews
from runtime.retriever import Retriever

from .conftest import DEMO


def test_the_zooms_are_central_crops_and_the_sum_is_weighted() -> None:
    views = QueryViews(zooms=(0.5, 0.4), weight=0.25)
    photo, half, closer = views.crops(Image.new("RGB", (400, 200)))
    assert photo.size == (400, 200) and half.size == (200, 100) and closer.size == (160, 80)
    pooled = l2_normalize(np.random.default_rng(0).normal(size=(6, 8))).astype(np.float32)
    combined = views.combine(pooled)
    np.testing.assert_allclose(combined, l2_normalize(pooled[0::3] + 0.25 * (pooled[1::3] + pooled[2::3])), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(combined, axis=1), 1.0, atol=1e-6)
    with pytest.raises(ValueError, match="4 descriptors are not 3 views per photo"):
        views.combine(pooled[:4])
    for bad in ({"zooms": (1.0,)}, {"zooms": (0.8, 0.1)}, {"zooms": ()}, {"weight": 0.0}, {"weight": 5.0}):
        with pytest.raises(ValueError, match="query zoom"):
            QueryViews(**bad)


def test_a_photo_is_described_from_every_view(views_bundle: Path, demo_queries: list[Path],
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from runtime.cli import main

    bundle = open_bundle(views_bundle)
    views = bundle.query_views
    assert views == QueryViews() and bundle.manifest["format_version"] == 4
    assert bundle.manifest["descriptor"]["query_views"] == {"kind": "zoom", "zooms": [0.8, 0.64], "weight": 0.5}
    assert main(["info", "--bundle", str(views_bundle)]) == 0
    assert "query views the photo and its central 80% and 64% zooms, summed (zoom weight 0.5)" in capsys.readouterr().out
    with open_backend(bundle.model_path, "onnxruntime", threads=1) as backend:
        one = Embedder(backend, bundle.card, bundle.levels)
        both = Embedder(backend, bundle.card, bundle.levels, views=views)
        photos = [one.decode(path) for path in demo_queries[:3]]
        by_hand = np.stack([l2_normalize(one.embed([photo])[0] + views.weight * one.embed(views.crops(photo)[1:]).sum(0))
                            for photo in photos])
        np.testing.assert_allclose(both.embed(photos), by_hand, atol=1e-5)
        assert both.inputs(photos[0]).shape == (3, 3, bundle.card.input.height, bundle.card.input.width)
        # the 64 % zoom still fills the 320 px input with the photo's own pixels: decoded with a 500 px shorter side
        assert (one.decode_side, both.decode_side) == (320, 500)
    with Retriever.open(views_bundle, threads=1) as retriever:
        # the query path, label reading or not, projects the summed descriptor into the index's space
        np.testing.assert_allclose(retriever.embed(demo_queries[:3]), bundle.projection.apply(by_hand), atol=1e-4)
        described, words = retriever.describe(demo_queries[:3], ocr=True)
        assert described.shape == (3, bundle.index.dim) and len(words) == 3
        np.testing.assert_allclose(np.linalg.norm(described, axis=1), 1.0, atol=1e-5)


def test_views_can_be_switched_off_and_older_bundles_answer_from_one_view(tmp_path: Path, demo_queries: list[Path],
                                                                           capsys: pytest.CaptureFixture[str]) -> None:
    from runtime.cli import main

    off = tmp_path / "off"
    assert main(["build", "--catalog", str(DEMO / "catalog.csv"), "--out", str(off), "--quiet", "--no-pictures",
                 "--ocr", "off", "--not-found-photos", "0", "--query-views", "off"]) == 0
    capsys.readouterr()
    bundle = open_bundle(off)
    # without views a bundle keeps the lowest format that holds it (2: a projection), as older kiosks read it
    assert bundle.query_views is None and "query_views" not in bundle.manifest["descriptor"]
    assert bundle.manifest["format_version"] == 2
    with Retriever.open(off, threads=1) as retriever:
        assert retriever.embedder.views_per_photo == 1
        one_view = retriever.embed(demo_queries[:2])
    # the same bundle with views recorded (format 4) describes its queries from all three
    manifest = json.loads((off / MANIFEST).read_text())
    manifest["descriptor"]["query_views"] = QueryViews().to_dict()
    manifest["format_version"] = 4
    (off / MANIFEST).write_text(json.dumps(manifest))
    with Retriever.open(off, threads=1) as retriever:
        assert retriever.embedder.views_per_photo == 3
        three_views = retriever.embed(demo_queries[:2])
    assert not np.allclose(one_view, three_views, atol=1e-3)
    assert np.all(np.sum(one_view * three_views, axis=1) > 0.8)  # the same photos, seen a little closer
