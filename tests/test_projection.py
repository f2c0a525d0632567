"""Descriptor projection (PCA; the adapted one: tests/test_adapted_projection.py): learned on the catalogue, stored
in the bundle, applied to every query."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")
from export.bundle.build import BuildOptions, build_bundle  # noqa: E402
from export.bundle.projection import learn_projection  # noqa: E402
from runtime.bundle import PROJECTION_FILE, open_bundle  # noqa: E402
from runtime.errors import BundleError, CatalogError  # noqa: E402
from runtime.describe.projection import Projection  # noqa: E402
from runtime.retriever import Retriever  # noqa: E402

from .conftest import DEMO  # noqa: E402


def _low_rank_catalogue(rows: int = 600, width: int = 64, rank: int = 8, seed: int = 0) -> np.ndarray:
    """Unit vectors that live near an 8-dimensional subspace, as a catalogue's descriptors largely do."""
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((rows, rank)) @ rng.standard_normal((rank, width)) + 0.01 * rng.standard_normal((rows, width))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def test_pca_keeps_nearest_neighbours_of_low_rank_descriptors() -> None:
    vectors = _low_rank_catalogue()
    projection, info = learn_projection(vectors, 16)
    np.testing.assert_allclose(projection.components.T @ projection.components, np.eye(16), atol=1e-4)
    reduced = projection.apply(vectors)
    assert reduced.shape == (600, 16) and reduced.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(reduced, axis=1), 1.0, atol=1e-5)
    assert info == {"kind": "pca", "in_dim": 64, "out_dim": 16, "fit_rows": 600, "variance_kept": pytest.approx(1.0, abs=0.01)}
    full, small = vectors @ vectors.T, reduced @ reduced.T
    np.fill_diagonal(full, -2)
    np.fill_diagonal(small, -2)
    assert (full.argmax(axis=1) == small.argmax(axis=1)).mean() > 0.95


def test_large_catalogues_fit_on_a_seeded_sample() -> None:
    vectors = _low_rank_catalogue(rows=600)
    first, info = learn_projection(vectors, 8, fit_rows=200)
    again, _ = learn_projection(vectors, 8, fit_rows=200)
    assert info["fit_rows"] == 200
    np.testing.assert_array_equal(first.components, again.components)


@pytest.mark.parametrize("dims, message", [(64, "between 1 and 63"), (0, "between 1 and 63"), (50, "more catalogue rows")])
def test_impossible_dimensions_are_clear_errors(dims: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        learn_projection(_low_rank_catalogue(rows=40), dims)


@pytest.fixture(scope="module")
def projected_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("projected") / "bundle"
    build_bundle(DEMO / "catalog.csv", out, BuildOptions(progress=False, calibration=None, projection="pca", reduce_dim=16, pictures=False,
                                                       ocr=False, query_views=None))
    return out


@pytest.fixture(scope="module")
def plain_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("plain") / "bundle"
    build_bundle(DEMO / "catalog.csv", out, BuildOptions(progress=False, calibration=None, projection="none", pictures=False, ocr=False,
                                                       query_views=None))
    return out


def test_projected_bundle_queries_in_the_reduced_space(projected_bundle: Path, plain_bundle: Path, demo_queries: list[Path]) -> None:
    bundle = open_bundle(projected_bundle)
    manifest = bundle.manifest
    assert manifest["format_version"] == 2 and manifest["descriptor"]["dim"] == 16
    assert manifest["descriptor"]["projection"]["file"] == PROJECTION_FILE
    assert bundle.index.vectors.shape == (24, 16)
    assert open_bundle(plain_bundle).projection is None and open_bundle(plain_bundle).manifest["format_version"] == 1
    with Retriever.open(projected_bundle) as small, Retriever.open(plain_bundle) as full:
        reduced = small.embed(demo_queries)
        np.testing.assert_allclose(reduced, bundle.projection.apply(full.embed(demo_queries)), atol=1e-5)
        groups = [path.name.removesuffix("_query.jpg") for path in demo_queries]
        hits_small = sum(r[0].group.lower() == g for r, g in zip(small.query_batch(demo_queries), groups))
        hits_full = sum(r[0].group.lower() == g for r, g in zip(full.query_batch(demo_queries), groups))
    assert hits_full >= 6 and hits_small >= hits_full - 1  # 24 items in 16 dims: at most one photo lost


def test_a_projection_that_does_not_fit_the_index_is_refused(projected_bundle: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "bundle"
    shutil.copytree(projected_bundle, copy)
    wrong = Projection(np.zeros(1280, np.float32), np.eye(1280, 8, dtype=np.float32))
    wrong.save(copy / PROJECTION_FILE)
    manifest = json.loads((copy / "manifest.json").read_text())
    data = (copy / PROJECTION_FILE).read_bytes()
    manifest["files"][PROJECTION_FILE] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="projection.npz maps 1280 -> 8 dims; the model gives 1280 and the index holds 16"):
        open_bundle(copy)


def test_more_dims_than_catalogue_rows_is_refused_before_extraction(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="--reduce-dim 30: .*fewer dims than catalogue rows \\(24\\)"):
        build_bundle(DEMO / "catalog.csv", tmp_path / "b", BuildOptions(progress=False, calibration=None, projection="pca", reduce_dim=30))
    assert not (tmp_path / "b").exists()
