"""The kiosk's parts on their own: the bounded pool's admission and timeout rules, catalogue pictures by
id, and where the standalone executable finds its bundle."""
from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest
from PIL import Image

from runtime.bundle.catalog import CatalogItem
from runtime.errors import BundleError
from runtime.kiosk.pool import Busy, QueryPool, QueryTimeout
from runtime.kiosk.thumbnails import CatalogThumbnails
from runtime.bundle.locate import resolve_bundle


def test_pool_refuses_beyond_workers_plus_queue() -> None:
    pool = QueryPool(workers=1, queue=1)
    release = threading.Event()
    holders = [threading.Thread(target=pool.run, args=(release.wait, 30)) for _ in range(2)]
    for holder in holders:
        holder.start()
    try:
        while pool.in_flight < 2:
            release.wait(0.01)
        with pytest.raises(Busy):
            pool.run(lambda: 1, timeout=1)
    finally:
        release.set()
        for holder in holders:
            holder.join()
    assert pool.run(lambda: 42, timeout=5) == 42 and pool.in_flight == 0
    pool.close()


def test_timed_out_job_keeps_its_slot_until_it_ends() -> None:
    pool = QueryPool(workers=1, queue=0)
    release = threading.Event()
    with pytest.raises(QueryTimeout):
        pool.run(release.wait, timeout=0.05)
    assert pool.in_flight == 1
    with pytest.raises(Busy):
        pool.run(lambda: 1, timeout=1)
    release.set()
    pool.close()
    assert pool.in_flight == 0


def test_pool_errors_reach_the_caller() -> None:
    pool = QueryPool(workers=1, queue=0)
    with pytest.raises(ZeroDivisionError):
        pool.run(lambda: 1 / 0, timeout=5)
    assert pool.in_flight == 0
    pool.close()


def test_pool_needs_a_worker() -> None:
    with pytest.raises(ValueError):
        QueryPool(workers=0, queue=1)


def test_thumbnails_by_id_only_and_from_images_beside_a_moved_bundle(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    Image.new("RGB", (1200, 800), (0, 120, 0)).save(tmp_path / "images" / "milk.jpg")
    items = [CatalogItem("milk", "Milk", "/where/it/was/built/milk.jpg", "milk"),
             CatalogItem("gone", "Gone", "/nowhere/gone.jpg", "gone")]
    thumbnails = CatalogThumbnails(tmp_path, items)
    assert thumbnails.source("milk") == tmp_path / "images" / "milk.jpg"
    data = thumbnails.jpeg("milk")
    assert data is not None and data[:2] == b"\xff\xd8"
    assert thumbnails.jpeg("milk") is data  # cached
    assert thumbnails.jpeg("gone") is None and thumbnails.jpeg("../images/milk.jpg") is None


def test_thumbnails_come_from_the_bundle_first(bundle_copy: Path, tmp_path: Path) -> None:
    """A bundle moved to a kiosk where the original catalogue images do not exist still shows its pictures."""
    from runtime.bundle import open_bundle

    bundle = open_bundle(bundle_copy)
    moved = [CatalogItem(item.id, item.title, f"/not/on/this/kiosk/{row}.jpg", item.group)
             for row, item in enumerate(bundle.catalog)]
    thumbnails = CatalogThumbnails(bundle_copy, moved, carried=bundle.picture)
    assert thumbnails.source(moved[3].id) == bundle.picture(3)
    data = thumbnails.jpeg(moved[3].id)
    assert data is not None and data[:2] == b"\xff\xd8"
    assert CatalogThumbnails(bundle_copy, moved).source(moved[3].id) is None  # without them, nothing to show


def _fake_bundle(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "manifest.json").write_text("{}")
    return path


def test_bundle_is_required_outside_the_executable() -> None:
    with pytest.raises(BundleError, match="--bundle is required"):
        resolve_bundle(None)
    assert resolve_bundle(Path("given")) == Path("given")


def test_executable_finds_the_bundle_beside_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "shadematch"))
    with pytest.raises(BundleError, match="no --bundle given"):
        resolve_bundle(None)
    only = _fake_bundle(tmp_path / "store-2026-11")
    assert resolve_bundle(None) == only
    _fake_bundle(tmp_path / "store-2026-12")
    with pytest.raises(BundleError, match="several bundles"):
        resolve_bundle(None)
    named = _fake_bundle(tmp_path / "bundle")
    assert resolve_bundle(None) == named
