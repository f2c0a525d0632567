"""The manifest as one validated type (issue 13, fault 4): bad values are BundleErrors naming the field, files stay
inside the bundle, symbolic links are not followed; a seeded fuzz of manifests finds no other exception."""
from __future__ import annotations

import copy
import hashlib
import json
import os
import random
from pathlib import Path
from typing import Any, Callable

import pytest

from runtime.bundle import MANIFEST, layout, open_bundle
from runtime.cli import main
from runtime.errors import BundleError


def _edit(bundle: Path, change: Callable[[dict], Any]) -> None:
    manifest = json.loads((bundle / MANIFEST).read_text())
    change(manifest)
    (bundle / MANIFEST).write_text(json.dumps(manifest))


@pytest.mark.parametrize(("change", "message"), [
    (lambda m: m["descriptor"].update(dim="abc"), "descriptor.dim must be an integer, got 'abc'"),
    (lambda m: m["index"].pop("ef"), "index.ef is missing"),
    (lambda m: m["search"].pop("k"), "search.k is missing"),
    (lambda m: m["descriptor"].pop("levels"), "descriptor.levels is missing"),
    (lambda m: m["search"].update(top=0), r"search.top = 0 is out of range"),
    (lambda m: m["search"].update(vote=-3), r"search.vote = -3 is out of range"),
    (lambda m: m["search"].update(k=True), "search.k must be an integer, got True"),
    (lambda m: m["files"].update({"vectors.npy": "abc"}), r"files\['vectors.npy'\] must be an object"),
    (lambda m: m["files"]["vectors.npy"].update(sha256="xyz"), "sha256 must be 64 lowercase hex digits"),
    (lambda m: m["files"].update({"../../etc/hostname": {"bytes": 1, "sha256": "0" * 64}}), "not a file inside the bundle"),
    (lambda m: m["files"].update({"/etc/hostname": {"bytes": 1, "sha256": "0" * 64}}), "not a file inside the bundle"),
    (lambda m: m["files"].update({"a/./b": {"bytes": 1, "sha256": "0" * 64}}), "not a file inside the bundle"),
    (lambda m: m["index"].update(file="elsewhere.bin"), "index.file names 'elsewhere.bin', which the manifest's files do not list"),
    (lambda m: m.update(search=[1, 2]), "section 'search' is missing or malformed"),
    (lambda m: m["labels"].update(weight=-1), r"labels.weight must be a number in 0.0..100.0, got -1"),
    (lambda m: m["labels"].update(weight="heavy"), r"labels.weight must be a number"),
    (lambda m: m["labels"].update(file="other.npz"), "labels.file names 'other.npz', which the manifest's files do not list"),
    (lambda m: m["labels"].pop("recogniser"), "labels.recogniser names None"),
    (lambda m: m.update(labels=3), "section 'labels' is missing or malformed"),
    (lambda m: m.update(format_version="2"), "bundle format version 2, but this shadematch reads"),
    (lambda m: m["descriptor"].update(query_views=[0.8]), "section descriptor.'query_views' is missing or malformed"),
    (lambda m: m["descriptor"].update(query_views={"kind": "tiles"}), "descriptor.query_views.kind must be 'zoom'"),
    (lambda m: m["descriptor"].update(query_views={"kind": "zoom", "zooms": [0.8, 1.5], "weight": 0.5}),
     r"descriptor.query_views.zoom must be a number in"),
    (lambda m: m["descriptor"].update(query_views={"kind": "zoom", "zooms": 0.8, "weight": 0.5}),
     r"descriptor.query_views.zooms must be a list of 1 to 4"),
    (lambda m: m["descriptor"].update(query_views={"kind": "zoom", "zooms": [0.8]}),
     r"descriptor.query_views.weight must be a number"),
])
def test_bad_manifest_values_are_bundle_errors_naming_the_field(bundle_copy: Path, change, message: str,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    _edit(bundle_copy, change)
    with pytest.raises(BundleError, match=message):
        open_bundle(bundle_copy)
    assert main(["info", "--bundle", str(bundle_copy)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("shadematch info:")


def test_symbolic_links_are_not_followed(bundle_copy: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.jsonl"
    os.replace(bundle_copy / "catalog.jsonl", outside)
    os.symlink(outside, bundle_copy / "catalog.jsonl")
    with pytest.raises(BundleError, match="catalog.jsonl is a symbolic link"):
        open_bundle(bundle_copy)
    with pytest.raises(BundleError, match="symbolic link"):
        open_bundle(bundle_copy, verify=False)


def _mutations(manifest: dict, rng: random.Random) -> dict:
    """One random edit: a key dropped, or a value replaced by one of another type, anywhere in the manifest."""
    mutated = copy.deepcopy(manifest)
    node = mutated
    while True:
        keys = list(node) if isinstance(node, dict) else list(range(len(node))) if isinstance(node, list) else []
        if not keys:
            break
        key = rng.choice(keys)
        child = node[key]
        if isinstance(child, (dict, list)) and child and rng.random() < 0.6:
            node = child
            continue
        if isinstance(node, dict) and rng.random() < 0.3:
            del node[key]
        else:
            node[key] = rng.choice([None, True, -1, 0, 2**70, 3.5, "", "abc", "../x", [], {}, [1, "a"], {"bytes": "1"}])
        break
    return mutated


@pytest.mark.slow
def test_fuzzed_manifests_give_bundle_errors_or_open(bundle_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    original = json.loads((bundle_copy / MANIFEST).read_text())
    rng = random.Random(13)
    opened = refused = 0
    for _ in range(300):
        (bundle_copy / MANIFEST).write_text(json.dumps(_mutations(original, rng)))
        try:
            open_bundle(bundle_copy, verify=False)
            opened += 1
        except BundleError:
            refused += 1
        for extra in ([], ["--json"]):  # no traceback escapes the CLI
            assert main(["info", "--bundle", str(bundle_copy), *extra]) in (0, 1)
        capsys.readouterr()
    assert refused > 100 and opened + refused == 300


def test_a_derived_bundle_that_replaces_its_source_links_its_files_and_rewrites_only_its_writers(
        bundle_copy: Path, tmp_path: Path) -> None:
    """`build` adds its confidence model and `tune` its settings this way: a 500K bundle (~5 GB) must not be copied
    and hashed again for a small file. A writer replaces its file; it never writes through the link into the old one."""
    from runtime.bundle.write import derive_bundle

    vectors, confidence = bundle_copy / layout.VECTORS_FILE, bundle_copy / "confidence.npz"
    inode = vectors.stat().st_ino
    kept = {name: tmp_path / f"old_{name}" for name in ("confidence.npz", layout.MANIFEST)}
    for name, second in kept.items():
        os.link(bundle_copy / name, second)  # a second name for the old file: it must keep its bytes
    old_bytes = {name: second.read_bytes() for name, second in kept.items()}
    derive_bundle(bundle_copy, bundle_copy, {"confidence.npz": lambda path: path.write_bytes(b"new")},
                  lambda m: m["search"].update(top=5), overwrite=True)
    assert vectors.stat().st_ino == inode  # linked, not copied
    assert {name: second.read_bytes() for name, second in kept.items()} == old_bytes
    assert confidence.read_bytes() == b"new"
    manifest = json.loads((bundle_copy / layout.MANIFEST).read_text())
    assert manifest["files"]["confidence.npz"] == {"bytes": 3, "sha256": hashlib.sha256(b"new").hexdigest()}
    assert manifest["search"]["top"] == 5 and not list(tmp_path.glob(".bundle.*"))
    # elsewhere, the new bundle gets copies of its own
    derive_bundle(bundle_copy, tmp_path / "derived", {}, lambda m: None)
    assert (tmp_path / "derived" / layout.VECTORS_FILE).stat().st_ino != inode


def test_a_file_damaged_before_a_derive_stays_detectable(bundle_copy: Path, tmp_path: Path) -> None:
    """Unchanged files keep the sha256 their source's manifest records: a derive never blesses a damaged file."""
    from runtime.bundle.write import derive_bundle

    catalog = bundle_copy / layout.CATALOG_FILE
    data = bytearray(catalog.read_bytes())
    data[10] ^= 0x01  # same size, other bytes
    catalog.write_bytes(bytes(data))
    derive_bundle(bundle_copy, tmp_path / "derived", {}, lambda m: m["search"].update(top=5))
    with pytest.raises(BundleError, match="checksum"):
        open_bundle(tmp_path / "derived")


def test_the_writer_checks_its_manifest_with_the_same_type(bundle_copy: Path, tmp_path: Path) -> None:
    """One type reads and writes: a derived bundle whose manifest the reader would refuse is never written."""
    from runtime.bundle.write import derive_bundle

    with pytest.raises(BundleError, match="search.top = 0 is out of range"):
        derive_bundle(bundle_copy, tmp_path / "derived", {}, lambda m: m["search"].update(top=0))
    assert not (tmp_path / "derived").exists() and not list(tmp_path.glob(".derived.*"))
    derive_bundle(bundle_copy, tmp_path / "derived", {}, lambda m: m["search"].update(top=5))
    assert open_bundle(tmp_path / "derived").top == 5
