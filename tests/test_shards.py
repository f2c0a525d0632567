"""Sharded, resumable catalogue feature extraction (export.bundle.shards) on the demo catalogue."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")
from export.bundle.build import BuildOptions, build_bundle, load_checked_card  # noqa: E402
from export.bundle.catalog import read_catalog_csv  # noqa: E402
from export.bundle.features import extract_features  # noqa: E402
from export.bundle.shards import ShardOptions, ShardReport, extract_sharded  # noqa: E402
from runtime.backends import open_backend  # noqa: E402
from runtime.bundle import open_bundle  # noqa: E402
from runtime.describe.embedder import Embedder  # noqa: E402
from runtime.errors import CatalogError  # noqa: E402
from runtime.describe.pooling import DEFAULT_LEVELS  # noqa: E402

from .conftest import DEMO, MODEL  # noqa: E402


@pytest.fixture(scope="module")
def rows():
    rows, problems = read_catalog_csv(DEMO / "catalog.csv")
    assert not problems
    return rows


@pytest.fixture(scope="module")
def single_process(rows) -> np.ndarray:
    card = load_checked_card(MODEL)
    with open_backend(MODEL, threads=1) as backend:
        vectors, kept, problems, _ = extract_features(rows, Embedder(backend, card, DEFAULT_LEVELS), progress=False)
    assert len(kept) == len(rows) and not problems
    return vectors


def test_interrupted_run_resumes_only_the_missing_shard(rows, single_process, tmp_path: Path) -> None:
    card = load_checked_card(MODEL)
    options = ShardOptions(workers=2, shard_rows=12, batch_size=8)
    first = ShardReport()
    vectors, kept, problems, _ = extract_sharded(rows, MODEL, card, DEFAULT_LEVELS, tmp_path, options, first)
    assert sorted(first.computed) == [0, 1] and first.reused == []
    np.testing.assert_allclose(vectors, single_process, atol=1e-5)
    assert [r.id for r in kept] == [r.id for r in rows] and problems == []

    kept_shard = tmp_path / "shard-00000.npz"
    stamp = kept_shard.stat().st_mtime_ns
    (tmp_path / "shard-00001.npz").unlink()  # the run "was interrupted" before shard 1 was written
    again = ShardReport()
    resumed, _, _, _ = extract_sharded(rows, MODEL, card, DEFAULT_LEVELS, tmp_path, options, again)
    assert again.computed == [1] and again.reused == [0]
    assert kept_shard.stat().st_mtime_ns == stamp  # not rewritten
    np.testing.assert_allclose(resumed, single_process, atol=1e-5)
    assert not list(tmp_path.glob("*.tmp"))


def test_resuming_with_another_catalogue_is_refused(rows, tmp_path: Path) -> None:
    card = load_checked_card(MODEL)
    options = ShardOptions(workers=1, shard_rows=12)
    extract_sharded(rows[:12], MODEL, card, DEFAULT_LEVELS, tmp_path, options)
    with pytest.raises(CatalogError, match="another catalogue or model .*rows"):
        extract_sharded(rows, MODEL, card, DEFAULT_LEVELS, tmp_path, options)


def test_build_with_workers_matches_a_single_process_build(demo_bundle: Path, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    build_bundle(DEMO / "catalog.csv", out, BuildOptions(progress=False, calibration=None, workers=2, work_dir=tmp_path / "work"))
    assert len(list((tmp_path / "work").glob("shard-*.npz"))) == 1
    np.testing.assert_allclose(open_bundle(out).index.vectors, open_bundle(demo_bundle).index.vectors, atol=1e-5)


def test_bad_images_come_back_as_problems_by_line(rows, tmp_path: Path) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really a jpeg")
    bad = rows[1].__class__(rows[1].line, rows[1].id, broken, rows[1].title, rows[1].group)
    mixed = [rows[0], bad, rows[2]]
    vectors, kept, problems, _ = extract_sharded(mixed, MODEL, load_checked_card(MODEL), DEFAULT_LEVELS, tmp_path / "w",
                                              ShardOptions(workers=1, shard_rows=2))
    assert [r.id for r in kept] == [rows[0].id, rows[2].id] and len(vectors) == 2
    assert [p.line for p in problems] == [rows[1].line] and "broken.jpg" in problems[0].message


def test_shards_read_the_labels_as_one_process_does(rows, tmp_path: Path) -> None:
    from runtime.reading.reader import CATALOGUE_LINES, DEFAULT_DETECTOR, DEFAULT_RECOGNISER, LabelReader

    card = load_checked_card(MODEL)
    models = (DEFAULT_DETECTOR, DEFAULT_RECOGNISER)
    some = rows[:8]
    with open_backend(MODEL, threads=1) as backend, LabelReader.open(*models, threads=1, max_lines=CATALOGUE_LINES) as reader:
        vectors, _, _, want = extract_features(some, Embedder(backend, card, DEFAULT_LEVELS), progress=False, reader=reader)
    got_vectors, kept, _, got = extract_sharded(some, MODEL, card, DEFAULT_LEVELS, tmp_path,
                                                ShardOptions(workers=2, shard_rows=4, reader=models))
    assert len(kept) == len(got) == 8 and sum(map(len, want)) >= 4
    assert [[text for text, _ in row] for row in got] == [[text for text, _ in row] for row in want]
    np.testing.assert_allclose(got_vectors, vectors, atol=1e-5)
    # shards with words and shards without them never mix
    with pytest.raises(CatalogError, match="reader_sha256"):
        extract_sharded(some, MODEL, card, DEFAULT_LEVELS, tmp_path, ShardOptions(workers=1, shard_rows=4))
