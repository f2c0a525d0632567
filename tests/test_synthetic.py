"""The synthetic catalogue at scale (export.synthetic.catalogs) and bundles built from precomputed vectors."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")
from export.bundle.build import BuildOptions, build_bundle_from_vectors  # noqa: E402
from export.synthetic.catalogs import SynthParams, descriptors, layout, titles, write_synthetic_catalog  # noqa: E402
from runtime.bundle import open_bundle  # noqa: E402
from runtime.cli import main  # noqa: E402
from runtime.errors import CatalogError  # noqa: E402
from runtime.search.two_stage import two_stage_search  # noqa: E402


def small(**overrides) -> SynthParams:
    return SynthParams(**{"items": 3000, "dim": 64, "brands": 30, "seed": 7, **overrides})


def test_seeded_and_shaped() -> None:
    params = small()
    lay = layout(params)
    first = np.concatenate(list(descriptors(params, lay, chunk=700)))
    again = np.concatenate(list(descriptors(params, layout(params), chunk=3000)))
    np.testing.assert_array_equal(first, again)  # chunking does not change the rows
    assert first.shape == (3000, 64) and first.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    assert titles(params, lay) == titles(params, layout(params))
    other = np.concatenate(list(descriptors(small(seed=8), layout(small(seed=8)))))
    assert not np.allclose(first, other)


def test_clusters_are_product_then_family_then_type() -> None:
    params = small()
    lay = layout(params)
    vectors = np.concatenate(list(descriptors(params, lay)))
    cos = vectors @ vectors.T
    same_product = lay.product[:, None] == lay.product[None, :]
    same_family = lay.family[:, None] == lay.family[None, :]
    same_type = lay.family_type[lay.family][:, None] == lay.family_type[lay.family][None, :]
    off_diagonal = ~np.eye(len(vectors), dtype=bool)
    means = [cos[mask & off_diagonal].mean() for mask in (
        same_product, same_family & ~same_product, same_type & ~same_family, ~same_type)]
    assert means == sorted(means, reverse=True), means
    assert means[-1] > 0.1  # pooled ReLU descriptors: unrelated products are not orthogonal


def test_titles_share_words_within_a_family() -> None:
    params = small()
    lay = layout(params)
    names = titles(params, lay)
    by_product: dict[int, set[str]] = {}
    for title, product in zip(names, lay.product):
        by_product.setdefault(int(product), set()).add(title)
    assert all(len(v) == 1 for v in by_product.values())  # images of a product share its title
    family_rows = np.flatnonzero(lay.family == np.bincount(lay.family).argmax())
    words = [set(names[r].split()) for r in family_rows[:20]]
    common = set.intersection(*words)
    assert len(common) >= 3  # brand, line name, line word, type


def test_synth_catalog_and_build_vectors_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cat = tmp_path / "cat"
    assert main(["synth-catalog", "--items", "2500", "--dim", "48", "--out", str(cat), "--seed", "1"]) == 0
    vectors = np.load(cat / "vectors.npy")
    assert vectors.shape == (2500, 48)
    with open(cat / "titles.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2500 and rows[0].keys() == {"id", "title", "group"}
    assert json.loads((cat / "synth.json").read_text())["items"] == 2500
    capsys.readouterr()
    bundle = tmp_path / "bundle"
    code = main(["build-vectors", "--vectors", str(cat / "vectors.npy"), "--titles", str(cat / "titles.csv"),
                 "--out", str(bundle), "--M", "12", "--ef-construction", "40", "--ef", "64", "--threads", "1", "--json"])
    assert code == 0
    timings = json.loads(capsys.readouterr().out)
    assert timings["items"] == 2500 and timings["index_s"] > 0 and timings["text_map_s"] > 0
    opened = open_bundle(bundle)
    assert opened.index.kind == "hnsw" and opened.manifest["index"]["M"] == 12
    assert opened.catalog[5].title == rows[5]["title"] and opened.catalog[5].group == rows[5]["group"]
    hits = two_stage_search(vectors[:50], opened.index, opened.text_map, k=3, top=7)
    assert sum(h[0].row == i for i, h in enumerate(hits)) >= 49  # an item finds itself
    assert any(hit.stage == "text" for row in hits for hit in row)


def test_build_vectors_refuses_mismatched_inputs(tmp_path: Path) -> None:
    write_synthetic_catalog(tmp_path / "cat", small(items=1200, dim=16))
    short = tmp_path / "short.npy"
    np.save(short, np.load(tmp_path / "cat" / "vectors.npy")[:-1])
    with pytest.raises(CatalogError, match="does not match 1200 rows"):
        build_bundle_from_vectors(short, tmp_path / "cat" / "titles.csv", tmp_path / "b", BuildOptions())
    raw = tmp_path / "raw.npy"
    np.save(raw, np.load(tmp_path / "cat" / "vectors.npy") * 3)
    with pytest.raises(CatalogError, match="not L2-normalised"):
        build_bundle_from_vectors(raw, tmp_path / "cat" / "titles.csv", tmp_path / "b", BuildOptions())
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("name,text\na,b\n")
    with pytest.raises(CatalogError, match="needs the columns id,title"):
        build_bundle_from_vectors(tmp_path / "cat" / "vectors.npy", bad_csv, tmp_path / "b", BuildOptions())
    assert not (tmp_path / "b").exists()
