"""Bundle opening: version and checksum checks with messages that say exactly what is wrong."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from runtime.bundle import FORMAT_VERSION, MANIFEST, open_bundle, sha256_files
from runtime.errors import BundleError

from .conftest import DEMO


def _edit_manifest(bundle: Path, edit) -> None:
    path = bundle / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))


def test_demo_bundle_opens_and_parts_agree(demo_bundle: Path) -> None:
    bundle = open_bundle(demo_bundle)
    assert len(bundle.catalog) == 24 == len(bundle.index) == len(bundle.text_map)
    assert bundle.index.kind == "exact"  # 24 items: below exact_below
    assert bundle.k == 1 and bundle.top == 7 and bundle.vote == 10
    norms = np.linalg.norm(np.asarray(bundle.index.vectors), axis=1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-5)
    manifest = bundle.manifest
    # labels need version 3, the adapted projection 2 (a bundle without them stays lower: test_adapted_projection);
    # this one has one query view (conftest), the default build's views make it 4 (test_query_views)
    assert manifest["format_version"] == 3 and manifest["descriptor"]["projection"]["kind"] == "adapted"
    assert "query_views" not in manifest["descriptor"] and bundle.query_views is None
    assert {"numpy", "onnxruntime", "hnswlib"} <= set(manifest["libraries"])
    assert set(manifest["files"]) >= {"models/visual.onnx", "vectors.npy", "text_map.npz", "catalog.jsonl",
                                      "projection.npz", "adaptation.npz"}


def test_tampered_file_is_a_checksum_error(bundle_copy: Path) -> None:
    vectors = bundle_copy / "vectors.npy"
    data = bytearray(vectors.read_bytes())
    data[-1] ^= 0xFF  # same size, different content
    vectors.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="checksum mismatch for vectors.npy"):
        open_bundle(bundle_copy)


def test_files_hashed_side_by_side_keep_their_order(tmp_path: Path) -> None:
    contents = [b"", b"a" * 10, bytes(range(256)) * 20_000, b"b" * 3_000_001]  # sizes out of order on purpose
    paths = []
    for i, data in enumerate(contents):
        paths.append(tmp_path / f"f{i}")
        paths[-1].write_bytes(data)
    assert sha256_files(paths, workers=3) == [hashlib.sha256(data).hexdigest() for data in contents]


def test_tampered_catalogue_is_named_among_all_files(bundle_copy: Path) -> None:
    catalog = bundle_copy / "catalog.jsonl"
    data = bytearray(catalog.read_bytes())
    data[0] ^= 0x01
    catalog.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="checksum mismatch for catalog.jsonl"):
        open_bundle(bundle_copy)


def test_truncated_file_is_reported_by_size_even_without_checksums(bundle_copy: Path) -> None:
    catalog = bundle_copy / "catalog.jsonl"
    catalog.write_bytes(catalog.read_bytes()[:-10])
    with pytest.raises(BundleError, match="catalog.jsonl is .* bytes, the manifest says"):
        open_bundle(bundle_copy, verify=False)


def test_other_format_version_is_refused(bundle_copy: Path) -> None:
    _edit_manifest(bundle_copy, lambda m: m.update(format_version=FORMAT_VERSION + 1))
    with pytest.raises(BundleError, match=f"format version {FORMAT_VERSION + 1}.*rebuild"):
        open_bundle(bundle_copy)


def test_missing_file_is_named(bundle_copy: Path) -> None:
    (bundle_copy / "text_map.npz").unlink()
    with pytest.raises(BundleError, match="text_map.npz is missing"):
        open_bundle(bundle_copy)


@pytest.mark.parametrize("content", ["", "{not json", json.dumps({"format": "something-else"})])
def test_broken_manifest(bundle_copy: Path, content: str) -> None:
    (bundle_copy / "manifest.json").write_text(content)
    with pytest.raises(BundleError, match="manifest"):
        open_bundle(bundle_copy)


def test_not_a_bundle(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="no such bundle"):
        open_bundle(tmp_path / "nothing")
    with pytest.raises(BundleError, match="no manifest.json"):
        open_bundle(tmp_path)


def test_manifest_disagreeing_with_catalogue(bundle_copy: Path) -> None:
    _edit_manifest(bundle_copy, lambda m: m["catalog"].update(items=25))
    with pytest.raises(BundleError, match="catalog.jsonl has 24 rows, the manifest says 25"):
        open_bundle(bundle_copy)


def test_bundle_carries_a_checksummed_picture_per_row(bundle_copy: Path) -> None:
    from PIL import Image

    from runtime.bundle import PICTURE_SIDE, PICTURES_DIR, picture_name

    bundle = open_bundle(bundle_copy)
    assert bundle.manifest["pictures"] == {"dir": PICTURES_DIR, "side": PICTURE_SIDE}
    for row in range(len(bundle.catalog)):
        picture = bundle.picture(row)
        assert picture == bundle_copy / PICTURES_DIR / picture_name(row)
        assert f"{PICTURES_DIR}/{picture_name(row)}" in bundle.manifest["files"]
        with Image.open(picture) as image, Image.open(bundle.catalog[row].image) as original:
            assert max(image.size) <= PICTURE_SIDE
            # The same picture, only smaller: same aspect ratio within a pixel of rounding.
            assert abs(image.size[0] / image.size[1] - original.size[0] / original.size[1]) < 0.02
    data = bytearray((bundle_copy / PICTURES_DIR / picture_name(0)).read_bytes())
    data[-3] ^= 0xFF
    (bundle_copy / PICTURES_DIR / picture_name(0)).write_bytes(bytes(data))
    with pytest.raises(BundleError, match=f"checksum mismatch for {PICTURES_DIR}/{picture_name(0)}"):
        open_bundle(bundle_copy)


def test_bundle_without_pictures_has_none(bundle_copy: Path) -> None:
    import shutil

    from runtime.bundle import PICTURES_DIR

    shutil.rmtree(bundle_copy / PICTURES_DIR)

    def strip(manifest: dict) -> None:
        manifest.pop("pictures")
        manifest["files"] = {k: v for k, v in manifest["files"].items() if not k.startswith(PICTURES_DIR + "/")}

    _edit_manifest(bundle_copy, strip)
    bundle = open_bundle(bundle_copy)
    assert bundle.picture(0) is None


def test_the_bundle_format_and_the_engine_plans_do_not_import_each_other() -> None:
    """Both hash files: they share runtime.checksums instead of importing each other (the old hidden circle)."""
    import subprocess
    import sys

    code = ("import sys, runtime.engines.plans; assert 'runtime.bundle' not in sys.modules, 'plans imports bundle'; "
            "import runtime.bundle.layout, runtime.bundle.manifest; print('ok')")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "ok"


def test_the_label_index_must_cover_the_catalogue(bundle_copy: Path) -> None:
    from runtime.bundle.write import _file_entries, _write_manifest
    from runtime.search.label_index import LabelIndex

    labels = LabelIndex.load(bundle_copy / "labels.npz")
    LabelIndex(labels.vocabulary, labels.idf, labels.indptr, labels.products, labels.weights,
               np.r_[labels.row_product, 0], labels.reads).save(bundle_copy / "labels.npz")
    manifest = json.loads((bundle_copy / MANIFEST).read_text())
    manifest["files"] = _file_entries(bundle_copy)
    _write_manifest(bundle_copy, manifest)
    with pytest.raises(BundleError, match="labels.npz covers 25 rows, the catalogue has 24"):
        open_bundle(bundle_copy)


def test_a_bundle_without_labels_answers_from_the_image_alone(tmp_path: Path, demo_queries: list[Path]) -> None:
    from export.bundle.build import BuildOptions, build_bundle
    from runtime.errors import ShadematchError
    from runtime.retriever import Retriever

    build_bundle(DEMO / "catalog.csv", tmp_path / "b", BuildOptions(progress=False, calibration=None, pictures=False, ocr=False,
                                                                          query_views=None))
    bundle = open_bundle(tmp_path / "b")
    assert bundle.labels is None and bundle.manifest["format_version"] == 2 and "labels" not in bundle.manifest
    assert not any(name.startswith("models/text_") for name in bundle.manifest["files"])
    with Retriever.open(tmp_path / "b") as retriever:
        assert not retriever.reads_labels
        answer = retriever.answer(demo_queries[:1])[0]
        assert answer.words == [] and len(answer.matches) == 7
        with pytest.raises(ShadematchError, match="no label index"):
            retriever.query(demo_queries[0], ocr=True)
    with pytest.raises(ShadematchError, match="no label index"):
        Retriever.open(tmp_path / "b", ocr=True)
