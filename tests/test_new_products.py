"""The unseen-products protocol (benchmarks/new_products/): the split, the training catalogue and the model card
agree; the protocol script runs end to end on a tiny generated split."""
from __future__ import annotations

import csv
import hashlib
import json
import math
import shutil
import sys
from collections import Counter
from pathlib import Path

import pytest

from .conftest import DEMO

ROOT = Path(__file__).resolve().parents[1]
NEW_PRODUCTS = ROOT / "benchmarks" / "new_products"
sys.path.insert(0, str(NEW_PRODUCTS))

import split as split_module  # noqa: E402

TOP_GROUPS = ("Fruit", "Vegetables", "Packages")


def test_split_is_the_seeded_stratified_draw() -> None:
    split = split_module.load_split()
    groups = split["classes"]
    assert len(groups) == 81 and len(split["held_out"]) >= 27
    assert split["held_out"] == split_module.draw_held_out(groups, split["seed"])
    held = Counter(groups[name] for name in split["held_out"])
    for top in TOP_GROUPS:
        assert held[top] == math.ceil(sum(g == top for g in groups.values()) / 3), top


def test_training_catalogue_holds_no_held_out_class() -> None:
    split = split_module.load_split()
    with open(NEW_PRODUCTS / "train_catalog.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    groups = {row["group"] for row in rows}
    assert groups == set(split_module.seen_classes(split))
    assert not groups & set(split["held_out"])
    assert not any(held in row["image"] for row in rows for held in split["held_out"])


def test_model_card_agrees_with_the_split() -> None:
    card = json.loads((NEW_PRODUCTS / "model.card.json").read_text(encoding="utf-8"))
    split = split_module.load_split()
    assert card["classes_seen"] == split_module.seen_classes(split)
    assert card["classes_held_out"] == sorted(split["held_out"])
    catalogue = NEW_PRODUCTS / card["training_catalog"]["file"]
    assert hashlib.sha256(catalogue.read_bytes()).hexdigest() == card["training_catalog"]["sha256"]
    assert card["training"]["config"]["use_text"] is False  # the shipped EAST saw every class's photos
    assert card["training"]["config"]["init_onnx"] == ""  # from the ImageNet backbone, not a model of all classes
    model = NEW_PRODUCTS / card["file"]
    assert hashlib.sha256(model.read_bytes()).hexdigest() == card["sha256"]
    assert model.stat().st_size < 30e6


def test_int8_sibling_is_model_onnx_calibrated_on_seen_classes_only() -> None:
    """The default build's INT8 model (on a CPU with a dot-product instruction) must not have seen a held-out class
    either: its activation ranges come from the training catalogue's photos alone."""
    parent = json.loads((NEW_PRODUCTS / "model.card.json").read_text(encoding="utf-8"))
    card = json.loads((NEW_PRODUCTS / "model_int8.card.json").read_text(encoding="utf-8"))
    assert card["precision"] == "int8" and card["quantized_from"]["sha256"] == parent["sha256"]
    assert hashlib.sha256((NEW_PRODUCTS / card["file"]).read_bytes()).hexdigest() == card["sha256"]
    assert card["calibration"]["catalogue"].startswith(parent["training_catalog"]["file"])
    assert card["classes_seen"] == parent["classes_seen"] and card["classes_held_out"] == parent["classes_held_out"]


def tiny_dataset(root: Path) -> dict[str, str]:
    """A Grocery-Store-shaped dataset/ folder from the demo's 12 products (iconic, one train and one val photo
    each), four to each top-level group; returns {class: group}."""
    with open(DEMO / "catalog.csv", newline="", encoding="utf-8") as fh:
        names = list(dict.fromkeys(row["group"] for row in csv.DictReader(fh)))
    groups = {name: TOP_GROUPS[i % 3] for i, name in enumerate(names)}
    lines = {"train": [], "val": []}
    classes = ["Class Name (str),Class ID (int),Coarse Class Name (str),Coarse Class ID (int),"
               "Iconic Image Path (str),Product Description Path (str)"]
    for cid, (name, top) in enumerate(groups.items()):
        stem = DEMO / "images" / name.lower()
        iconic = root / "iconic-images-and-descriptions" / top / name / name
        iconic.mkdir(parents=True)
        shutil.copy(f"{stem}_iconic.jpg", iconic / f"{name}_Iconic.jpg")
        (iconic / f"{name}_Description.txt").write_text(f"{name.replace('-', ' ')} from the tiny store.", encoding="utf-8")
        rel = f"/iconic-images-and-descriptions/{top}/{name}/{name}"
        classes.append(f"{name},{cid},{name},{cid},{rel}/{name}_Iconic.jpg,{rel}/{name}_Description.txt")
        for split, photo in (("train", "train"), ("val", "query")):
            folder = root / split / top / name / name
            folder.mkdir(parents=True)
            shutil.copy(f"{stem}_{photo}.jpg", folder / f"{name}_001.jpg")
            lines[split].append(f"{split}/{top}/{name}/{name}/{name}_001.jpg, {cid}, {cid}")
    (root / "classes.csv").write_text("\n".join(classes) + "\n", encoding="utf-8")
    for split, rows in lines.items():
        (root / f"{split}.txt").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return groups


@pytest.mark.slow  # trains, exports and scores end to end: ~30 s on 2 cores
def test_protocol_script_end_to_end_on_a_tiny_split(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    import run

    groups = tiny_dataset(tmp_path / "dataset")
    split_path = tmp_path / "split.json"
    split_module.write_json_atomic(split_path, split_module.make_split(groups, seed=3))
    held_out = set(split_module.load_split(split_path)["held_out"])
    assert len(held_out) == 6  # ceil(4 / 3) of each group
    train_catalog = tmp_path / "train_catalog.csv"
    code = run.main(["--work", str(tmp_path / "work"), "--root", str(tmp_path / "dataset"), "--split", str(split_path),
                     "--train-catalog", str(train_catalog), "--model-dir", str(tmp_path / "model"),
                     "--results", str(tmp_path / "results"), "--steps", "2", "--size", "128",
                     "--train-arg=--batch-size=4", "--train-arg=--size=96", "--train-arg=--catalogue-views=2",
                     "--build-arg=--ocr=off", "--build-arg=--not-found-photos=0", "--build-arg=--views=2",
                     "--eval-arg=--non-products=0"])
    assert code == 0
    card = json.loads((tmp_path / "model" / "model.card.json").read_text(encoding="utf-8"))
    assert set(card["classes_seen"]) == set(groups) - held_out
    assert card["training_catalog"]["sha256"] == hashlib.sha256(train_catalog.read_bytes()).hexdigest()
    with open(train_catalog, newline="", encoding="utf-8") as fh:
        assert {row["group"] for row in csv.DictReader(fh)} == set(groups) - held_out
    report = json.loads((tmp_path / "results" / "unseen_val.json").read_text(encoding="utf-8"))
    assert set(report["headline"]) == {f"{p}/{q}" for p in ("instore", "catalogue_only") for q in ("unseen", "seen")}
    for protocol in ("instore", "catalogue_only"):
        assert report["reports"][protocol]["unseen"]["queries"] == 6
        assert report["reports"][protocol]["seen"]["queries"] == 6
    for figures in report["headline"].values():
        assert 0.0 <= figures["top1"] <= 1.0 and 0.0 <= figures["map7"] <= 1.0
    card = json.loads((tmp_path / "model" / "model.card.json").read_text(encoding="utf-8"))
    assert card["metrics"]["catalogue_only_unseen_products_top1"] == report["headline"]["catalogue_only/unseen"]["top1"]
    assert hashlib.sha256((tmp_path / "model" / "model.onnx").read_bytes()).hexdigest() == card["sha256"]
