"""The descriptor adapted to the catalogue (export.bundle.projection, export.bundle.adapt): regularised LDA of the products,
store-like views where a product has one image, and what the bundle records about it."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")
from export.bundle.build import BuildOptions, build_bundle  # noqa: E402
from export.bundle.projection import adapted_projection, learn_adapted_projection  # noqa: E402
from runtime.bundle.adaptation import load_adaptation  # noqa: E402
from runtime.bundle import ADAPTATION_FILE, PROJECTION_FILE, open_bundle  # noqa: E402
from runtime.cli import main  # noqa: E402
from runtime.errors import CatalogError  # noqa: E402

from .conftest import DEMO  # noqa: E402


def _clusters(products: int = 12, per_product: int = 16, width: int = 48, noise_seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Unit descriptors of ``products`` products whose identity lives in 6 faint dimensions, buried under strong
    nuisance variation (light, pose) in the others: raw cosine mostly compares the nuisance. The products are
    the same for every ``noise_seed``; the samples of them differ."""
    centres = np.zeros((products, width))
    centres[:, :6] = 0.6 * np.random.default_rng(0).standard_normal((products, 6))
    labels = np.repeat(np.arange(products), per_product)
    noise = np.random.default_rng(noise_seed).standard_normal((len(labels), width)) * np.r_[np.full(6, 0.05), np.full(width - 6, 0.5)]
    vectors = 3.0 + centres[labels] + noise  # a common offset, as real SR-MAC descriptors (all >= 0) share
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32), labels


def _nearest_product_accuracy(gallery: np.ndarray, gallery_labels: np.ndarray, queries: np.ndarray,
                              query_labels: np.ndarray) -> float:
    return float((gallery_labels[(queries @ gallery.T).argmax(axis=1)] == query_labels).mean())


def test_adapted_projection_separates_hand_made_clusters() -> None:
    gallery, labels = _clusters(noise_seed=1)
    queries, query_labels = _clusters(noise_seed=2, per_product=4)
    projection, info, _ = learn_adapted_projection(gallery, [str(label) for label in labels], shrinkage=0.1)
    raw = _nearest_product_accuracy(gallery, labels, queries, query_labels)
    adapted = _nearest_product_accuracy(projection.apply(gallery), labels, projection.apply(queries), query_labels)
    assert raw < 0.5 and adapted > 0.9, (raw, adapted)
    assert info["kind"] == "adapted" and info["out_dim"] == 11 and info["groups"] == 12 and info["fit_rows"] == 192
    np.testing.assert_allclose(np.linalg.norm(projection.apply(queries), axis=1), 1.0, atol=1e-5)


def test_one_image_per_product_cannot_show_within_product_variation() -> None:
    gallery, labels = _clusters(per_product=1)
    with pytest.raises(ValueError, match="two or more images or store-like views"):
        learn_adapted_projection(gallery, [str(label) for label in labels], shrinkage=0.3)
    with pytest.raises(ValueError, match="at least two products"):
        learn_adapted_projection(gallery[:4], ["one"] * 4, shrinkage=0.3)


@pytest.mark.parametrize("shrinkage", [-0.1, 1.5])
def test_shrinkage_outside_0_1_is_refused(shrinkage: float) -> None:
    gallery, labels = _clusters()
    with pytest.raises(ValueError, match="shrinkage must be in"):
        learn_adapted_projection(gallery, list(labels.astype(str)), shrinkage=shrinkage)


def _singles_catalogue(tmp_path: Path, rows: int = 4) -> Path:
    """``rows`` demo catalogue images, each its own product (no group column): one image per product."""
    lines = (DEMO / "catalog.csv").read_text(encoding="utf-8").splitlines()[1:]
    picked = [line.split(",", 2) for line in lines[: 2 * rows : 2]]
    body = [f"{row_id},{DEMO / image},{title.rsplit(',', 1)[0]}" for row_id, image, title in picked]
    path = tmp_path / "singles.csv"
    path.write_text("\n".join(["id,image,title", *body]) + "\n", encoding="utf-8")
    return path


def test_a_catalogue_of_single_images_gets_store_like_views(tmp_path: Path) -> None:
    catalogue = _singles_catalogue(tmp_path)
    options = BuildOptions(progress=False, calibration=None, pictures=False, views=3, ocr=False, query_views=None)
    build_bundle(catalogue, tmp_path / "a", options)
    build_bundle(catalogue, tmp_path / "b", options)
    bundle = open_bundle(tmp_path / "a")
    info = bundle.manifest["descriptor"]["projection"]
    assert info["kind"] == "adapted" and info["out_dim"] == 3 and info["variation_from"] == "views"
    assert info["images_with_views"] == 4 and info["views_per_image"] == 3 and info["view_averaged_rows"] == 4
    assert info["fit_rows"] == 4 + 4 * 3 and info["refit"] == ADAPTATION_FILE
    assert bundle.manifest["format_version"] == 2 and bundle.index.vectors.shape == (4, 3)
    # seeded: the same catalogue gives the same projection, byte for byte
    assert (tmp_path / "a" / PROJECTION_FILE).read_bytes() == (tmp_path / "b" / PROJECTION_FILE).read_bytes()
    scatter, raw = load_adaptation(tmp_path / "a" / ADAPTATION_FILE)
    assert raw.shape == (4, 1280)
    refit = adapted_projection(scatter, info["shrinkage"]).apply(raw)  # axes up to sign: compare similarities
    np.testing.assert_allclose(refit @ refit.T, bundle.index.vectors @ bundle.index.vectors.T, atol=2e-3)


def test_single_images_without_views_fail_before_anything_is_written(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="two or more images or store-like views"):
        build_bundle(_singles_catalogue(tmp_path), tmp_path / "b", BuildOptions(progress=False, calibration=None, views=0))
    assert not (tmp_path / "b").exists() and not list(tmp_path.glob(".b.tmp-*"))


def test_the_projection_can_be_switched_off(tmp_path: Path) -> None:
    build_bundle(_singles_catalogue(tmp_path), tmp_path / "b", BuildOptions(progress=False, calibration=None, projection="none", pictures=False,
                                                                                      ocr=False, query_views=None))
    bundle = open_bundle(tmp_path / "b")
    assert bundle.projection is None and bundle.index.dim == 1280 and bundle.manifest["format_version"] == 1


def test_the_demo_catalogue_adapts_from_its_own_images(demo_bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    info = open_bundle(demo_bundle).manifest["descriptor"]["projection"]
    assert info["kind"] == "adapted" and info["variation_from"] == "images" and info["images_with_views"] == 0
    assert info["groups"] == 12 and info["out_dim"] == 11 and info["fit_rows"] == 24
    assert main(["info", "--bundle", str(demo_bundle)]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("projection"))
    assert "adapted to the catalogue's products" in line and "1280 -> 11 dims" in line and "12 products" in line
    assert json.loads((demo_bundle / "manifest.json").read_text())["files"][ADAPTATION_FILE]["bytes"] > 0
