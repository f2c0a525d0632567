"""`shadematch update`: a bundle changed by a delta equals a bundle built from the final catalogue; removed rows
never come back; bad deltas are refused before anything is written."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")
from export.bundle.build import BuildOptions, build_bundle  # noqa: E402
from export.bundle.confidence import CalibrationOptions  # noqa: E402
from export.bundle.update import UpdateOptions, update_bundle  # noqa: E402
from runtime.bundle import open_bundle, sha256_file  # noqa: E402
from runtime.cli import main  # noqa: E402
from runtime.errors import CatalogError  # noqa: E402
from runtime.retriever import Retriever  # noqa: E402
from runtime.search.index import IndexParams  # noqa: E402

from .conftest import DEMO  # noqa: E402

ROWS = list(csv.DictReader(open(DEMO / "catalog.csv", encoding="utf-8")))
HELD = sorted({row["group"] for row in ROWS})[:10]  # ten products (20 images) left out of the first build
OPTIONS = UpdateOptions(progress=False)


def _csv(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["id", "image", "title", "group"])
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "image": str((DEMO / row["image"]).resolve())})
    return path


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The demo catalogue without two products, and the whole catalogue in the order an update gives it."""
    folder = tmp_path_factory.mktemp("update")
    rest = [row for row in ROWS if row["group"] not in HELD]
    held = [row for row in ROWS if row["group"] in HELD]
    options = BuildOptions(progress=False, calibration=None, projection="none")
    build_bundle(_csv(folder / "part.csv", rest), folder / "part", options)
    build_bundle(_csv(folder / "full.csv", rest + held), folder / "full", options)
    _csv(folder / "add.csv", held)
    return {"part": folder / "part", "full": folder / "full", "add": folder / "add.csv", "folder": folder}


def test_adding_the_missing_products_equals_a_full_build(bundles, demo_queries: list[Path]) -> None:
    before = {p.name: sha256_file(p) for p in bundles["part"].rglob("*") if p.is_file()}
    out = bundles["folder"] / "updated"
    report = update_bundle(bundles["part"], out, add=bundles["add"], options=OPTIONS)
    assert (report.added, report.removed, report.items) == (20, 0, 24)
    assert {p.name: sha256_file(p) for p in bundles["part"].rglob("*") if p.is_file()} == before  # parent untouched
    got, want = open_bundle(out), open_bundle(bundles["full"])
    assert [i.id for i in got.catalog] == [i.id for i in want.catalog]
    np.testing.assert_array_equal(got.index.vectors, want.index.vectors)
    np.testing.assert_array_equal(got.text_map.indices, want.text_map.indices)
    np.testing.assert_array_equal(got.labels.reads.text, want.labels.reads.text)
    np.testing.assert_allclose(got.labels.weights, want.labels.weights, atol=1e-6)
    with Retriever.open(out) as a, Retriever.open(bundles["full"]) as b:
        assert [[m.id for m in r] for r in a.query_batch(demo_queries)] == [[m.id for m in r] for r in b.query_batch(demo_queries)]
    lineage = got.manifest["lineage"]
    assert lineage["parent"]["manifest_sha256"] == sha256_file(bundles["part"] / "manifest.json")
    assert (lineage["added"], lineage["removed"], lineage["updates_since_build"]) == (20, 0, 1)
    assert sum(1 for p in (out / "pictures").iterdir()) == 24


def test_removed_rows_never_come_back(bundles, tmp_path: Path, demo_queries: list[Path]) -> None:
    gone = [row["id"] for row in ROWS if row["group"] == HELD[0]] + [ROWS[0]["id"]]
    (tmp_path / "gone.txt").write_text("\n".join(gone) + "\n")
    update_bundle(bundles["full"], tmp_path / "smaller", remove=tmp_path / "gone.txt", options=OPTIONS)
    bundle = open_bundle(tmp_path / "smaller")
    assert len(bundle.catalog) == 24 - len(gone) and not {i.id for i in bundle.catalog} & set(gone)
    with Retriever.open(tmp_path / "smaller") as retriever:
        for matches in retriever.query_batch(demo_queries, top=50, distinct=False):
            assert not {m.id for m in matches} & set(gone) and len(matches) == len(bundle.catalog)
    assert HELD[0] not in {i.group for i in bundle.catalog}
    assert len(bundle.labels) == 11  # the label index lost the removed product


def test_an_hnsw_bundle_is_extended_not_rebuilt(tmp_path: Path, demo_queries: list[Path]) -> None:
    rest = [row for row in ROWS if row["group"] not in HELD]
    options = BuildOptions(progress=False, calibration=None, projection="none", pictures=False, ocr=False,
                           index=IndexParams(exact_below=1, M=8, ef_construction=40))
    build_bundle(_csv(tmp_path / "part.csv", rest), tmp_path / "part", options)
    (tmp_path / "gone.txt").write_text(rest[0]["id"] + "\n" + rest[3]["id"] + "\n")
    report = update_bundle(tmp_path / "part", tmp_path / "up", add=_csv(tmp_path / "add.csv", [r for r in ROWS if r["group"] in HELD]),
                           remove=tmp_path / "gone.txt", options=OPTIONS)
    assert report.index == "extended"
    bundle = open_bundle(tmp_path / "up")
    assert bundle.manifest["index"]["rows"] == "index_rows.npy" and bundle.manifest["index"]["deleted"] == 2
    with Retriever.open(tmp_path / "up") as retriever:
        descriptors = retriever.embed(demo_queries)
        ids, _ = bundle.index.search(descriptors, 7)
        exact = np.argsort(-(descriptors @ np.asarray(bundle.index.vectors).T), axis=1)[:, :7]
        assert np.mean([len(set(a) & set(b)) / 7 for a, b in zip(ids.tolist(), exact.tolist())]) >= 0.95
        found = {m.id for r in retriever.query_batch(demo_queries, top=22, distinct=False) for m in r}
    assert not found & {rest[0]["id"], rest[3]["id"]}


@pytest.mark.parametrize(("delta", "message"), [
    ({"add": [ROWS[0]]}, "is already in the bundle"),
    ({"remove": "nobody\n"}, "cannot remove 'nobody': not in the bundle"),
    ({"replace": [{**ROWS[0], "id": "nobody"}]}, "cannot replace 'nobody'"),
    ({"remove": f"{ROWS[1]['id']}\n{ROWS[1]['id']}\n"}, "twice"),
    ({"add": [{**ROWS[0], "id": "new"}], "replace": [{**ROWS[0], "id": "new"}]}, "twice"),
    ({}, "nothing to change"),
])
def test_bad_deltas_are_refused_before_anything_is_written(bundles, tmp_path: Path, delta: dict, message: str) -> None:
    paths = {}
    for kind, value in delta.items():
        if kind == "remove":
            paths[kind] = tmp_path / "remove.txt"
            paths[kind].write_text(value)
        else:
            paths[kind] = _csv(tmp_path / f"{kind}.csv", value)
    with pytest.raises(CatalogError, match=message):
        update_bundle(bundles["full"], tmp_path / "out", options=OPTIONS, **paths)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))


def test_replace_in_place_through_the_command(bundles, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    bundle = tmp_path / "bundle"
    shutil.copytree(bundles["full"], bundle)
    changed = [{**ROWS[5], "title": "Arla Standard Milk, new pack. Now in a 1.5 l carton."}]
    _csv(tmp_path / "changed.csv", changed)
    argv = ["update", "--bundle", str(bundle), "--replace", str(tmp_path / "changed.csv"), "--quiet"]
    assert main([*argv, "--out", str(bundle)]) == 1
    assert "add --force" in capsys.readouterr().err
    assert main([*argv, "--out", str(bundle), "--force", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["replaced"], report["added"], report["removed"], report["items"]) == (1, 0, 0, 24)
    updated = open_bundle(bundle)
    titles = {item.id: item.title for item in updated.catalog}
    assert titles[ROWS[5]["id"]] == changed[0]["title"] and updated.catalog[23].id == ROWS[5]["id"]
    assert main(["info", "--bundle", str(bundle)]) == 0
    assert "(+0 -0 ~1; index exact, text map full; update 1 since the build)" in capsys.readouterr().out


@pytest.mark.slow
def test_an_adapted_projection_is_refitted_so_the_update_answers_as_a_build(tmp_path: Path, demo_bundle: Path,
                                                                            demo_queries: list[Path]) -> None:
    rest = [row for row in ROWS if row["group"] not in HELD]
    build_bundle(_csv(tmp_path / "part.csv", rest), tmp_path / "part",
                 BuildOptions(progress=False, pictures=False, calibration=CalibrationOptions(non_products=40)))
    held = _csv(tmp_path / "add.csv", [row for row in ROWS if row["group"] in HELD])
    build_bundle(_csv(tmp_path / "full.csv", rest + [r for r in ROWS if r["group"] in HELD]), tmp_path / "full",
                 BuildOptions(progress=False, calibration=None, pictures=False))
    update_bundle(tmp_path / "part", tmp_path / "up", add=held, options=OPTIONS)
    kept = tmp_path / "kept"
    update_bundle(tmp_path / "part", kept, add=held, options=UpdateOptions(progress=False, refit=False))
    up, full = open_bundle(tmp_path / "up"), open_bundle(tmp_path / "full")
    info = up.manifest["descriptor"]["projection"]
    assert up.manifest["lineage"]["projection"] == "refitted" and info["groups"] == 12 and info["out_dim"] == 11
    assert open_bundle(kept).manifest["descriptor"]["projection"]["rows_added_since_fit"] == 20
    assert up.query_views is not None and up.query_views == open_bundle(kept).query_views == full.query_views
    # the confidence model weighs descriptors: carried while their space is kept, fitted again when refitted
    part = open_bundle(tmp_path / "part")
    np.testing.assert_array_equal(open_bundle(kept).confidence.product_weights, part.confidence.product_weights)
    assert open_bundle(kept).manifest["confidence"] == part.manifest["confidence"]
    assert up.confidence is not None and up.confidence.dim == 11
    assert up.manifest["confidence"]["non_products"] == 40  # fitted again as the build chose, not with the defaults
    assert not np.array_equal(up.confidence.product_weights[:5], part.confidence.product_weights[:5])
    # the stored rows are float16: the refitted bundle's rows agree with the build's to that precision
    np.testing.assert_allclose(np.abs(up.index.vectors @ up.index.vectors.T),
                               np.abs(full.index.vectors @ full.index.vectors.T), atol=0.02)
    with Retriever.open(tmp_path / "up") as a, Retriever.open(tmp_path / "full") as b:
        assert [r[0].id for r in a.query_batch(demo_queries)] == [r[0].id for r in b.query_batch(demo_queries)]
    with pytest.raises(CatalogError, match="single image"):
        (tmp_path / "gone.txt").write_text(ROWS[0]["id"] + "\n")
        update_bundle(tmp_path / "up", tmp_path / "bad", remove=tmp_path / "gone.txt",
                      options=UpdateOptions(progress=False, refit=True))
