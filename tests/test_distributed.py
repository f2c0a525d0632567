"""Catalogue indexing on Ray (export.bundle.distributed): a local Ray instance with 2 workers, merged into one bundle."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")
ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'shadematch[distributed]')")
pytest.importorskip("ray.data", reason="ray.data is not installed (pip install 'ray[data]')")

from export.bundle.build import BuildOptions, build_bundle  # noqa: E402
from runtime.bundle import open_bundle  # noqa: E402

from .conftest import DEMO  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def test_ray_build_equals_the_single_process_bundle(local_ray, demo_bundle: Path, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    build_bundle(DEMO / "catalog.csv", out, BuildOptions(progress=False, calibration=None, ray=True, workers=2, batch_size=5))
    got, want = open_bundle(out), open_bundle(demo_bundle)
    assert [item.id for item in got.catalog] == [item.id for item in want.catalog]
    np.testing.assert_allclose(got.index.vectors, want.index.vectors, atol=1e-5)
    np.testing.assert_array_equal(got.text_map.indices, want.text_map.indices)
    # the labels are read on the Ray workers too, word for word as in one process
    np.testing.assert_array_equal(got.labels.reads.text, want.labels.reads.text)
    np.testing.assert_array_equal(got.labels.reads.row, want.labels.reads.row)
    np.testing.assert_allclose(got.labels.reads.confidence, want.labels.reads.confidence, atol=1e-4)


def test_ray_reports_bad_images_by_line(local_ray, tmp_path: Path) -> None:
    from export.bundle.catalog import read_catalog_csv
    from export.bundle.build import load_checked_card
    from export.bundle.distributed import extract_on_ray
    from runtime.describe.pooling import DEFAULT_LEVELS

    from .conftest import MODEL

    rows, _ = read_catalog_csv(DEMO / "catalog.csv")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    rows = rows[:4] + [rows[4].__class__(rows[4].line, rows[4].id, broken, rows[4].title, rows[4].group)] + rows[5:7]
    from runtime.reading.reader import DEFAULT_DETECTOR, DEFAULT_RECOGNISER

    vectors, kept, problems, reads = extract_on_ray(rows, MODEL, load_checked_card(MODEL), DEFAULT_LEVELS, batch_size=3,
                                                    workers=2, reader=(DEFAULT_DETECTOR, DEFAULT_RECOGNISER))
    assert len(vectors) == len(kept) == len(reads) == 6
    assert [p.line for p in problems] == [rows[4].line] and "broken.jpg" in problems[0].message
