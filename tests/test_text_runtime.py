"""Text detection at query time with the shipped EAST model (detector, mask for eq. 2) and the `text` command."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from runtime.cli import main
from runtime.errors import ModelCardError
from runtime.reading.detector import DEFAULT_TEXT_MODEL, TextDetector, text_mask

from .conftest import DEMO, MODEL

#: A real store photo of a carton with large printed text.
PHOTO = DEMO / "images" / "arla-standard-milk_iconic.jpg"
#: A shopper's photo of a juice carton whose label reads "orange&red grapefruit".
LABEL_PHOTO = DEMO / "images" / "god-morgon-orange-red-grapefruit-juice_query.jpg"


@pytest.fixture(scope="module")
def detector():
    with TextDetector.open(DEFAULT_TEXT_MODEL, threads=2) as opened:
        yield opened


def test_detects_text_on_a_real_carton(detector: TextDetector) -> None:
    boxes = detector.detect(PHOTO)
    width, height = Image.open(PHOTO).size
    assert len(boxes) >= 1
    for box in boxes:
        assert box.quad.shape == (4, 2) and 0.0 <= box.score <= 1.0
        assert np.all(box.quad[:, 0] > -0.1 * width) and np.all(box.quad[:, 0] < 1.1 * width)
        assert np.all(box.quad[:, 1] > -0.1 * height) and np.all(box.quad[:, 1] < 1.1 * height)


def test_boxes_follow_the_photo_when_it_is_resized(detector: TextDetector, tmp_path: Path) -> None:
    image = Image.open(PHOTO)
    big = tmp_path / "big.png"
    image.resize((image.width * 2, image.height * 2)).save(big)
    small_boxes, big_boxes = detector.detect(PHOTO), detector.detect(big)
    assert len(big_boxes) >= 1
    # Same model input after resizing, so the same boxes, at twice the coordinates.
    centre_small = np.mean([b.quad.mean(axis=0) for b in small_boxes], axis=0)
    centre_big = np.mean([b.quad.mean(axis=0) for b in big_boxes], axis=0)
    np.testing.assert_allclose(centre_big, 2 * centre_small, atol=0.05 * image.width)


def test_text_mask_on_the_visual_grid(detector: TextDetector) -> None:
    from runtime.describe.image import load_image, prepare

    score, _ = detector.maps(prepare(load_image(PHOTO), detector.card.input)[None])
    assert 0.0 <= text_mask(score, (10, 10)).min() and text_mask(score, (10, 10)).max() <= 1.0
    # The map's sides are multiples of 8 (input multiples of 32, stride 4): 8 x 8 bins tile it exactly.
    grid = (score.shape[2] // 8, score.shape[3] // 8)
    mask = text_mask(score, grid)
    assert mask.shape == (1, 1, *grid)
    np.testing.assert_allclose(mask.mean(), score.mean(), rtol=1e-5)  # equal bins: the mean is kept


def test_text_mask_by_hand() -> None:
    score = np.zeros((1, 1, 4, 4), np.float32)
    score[0, 0, :2, :2] = 1.0
    np.testing.assert_allclose(text_mask(score, (2, 2))[0, 0], [[1, 0], [0, 0]])
    np.testing.assert_allclose(text_mask(score, (1, 1))[0, 0], [[0.25]])


def test_a_visual_model_is_not_a_text_detector() -> None:
    with pytest.raises(ModelCardError, match="not a text detector"):
        TextDetector.open(MODEL)


def test_text_command_json_and_overlay(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    overlay = tmp_path / "overlay.png"
    assert main(["text", str(LABEL_PHOTO), "--out", str(overlay), "--json"]) == 0
    words = json.loads(capsys.readouterr().out)["words"]
    # the command prints what it read, not only where
    assert "grapefruit" in [w["text"].lower() for w in words]
    assert all(len(w["box"]) == 4 and 0 < w["confidence"] <= 1 for w in words)
    assert Image.open(overlay).size == Image.open(LABEL_PHOTO).size


def test_text_command_on_a_bad_photo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff")
    assert main(["text", str(bad)]) == 1
    assert "shadematch text:" in capsys.readouterr().err


@pytest.mark.parametrize(("name", "format_"), [("o.png", "PNG"), ("o.jpg", "JPEG"), ("o.JPEG", "JPEG"), ("o.webp", "WEBP")])
def test_overlay_is_written_in_the_format_its_extension_names(tmp_path: Path, name: str, format_: str) -> None:
    from runtime.reading.overlay import draw_overlay
    from runtime.reading.reader import Word

    photo = Image.open(LABEL_PHOTO)
    out = draw_overlay(photo, [Word("orange", 0.9, (10.0, 20.0, 60.0, 40.0))], tmp_path / name)
    with Image.open(out) as written:
        assert written.format == format_ and written.size == photo.size
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temporary file left beside it


@pytest.mark.parametrize(("out", "message"), [("missing/overlay.png", "no folder"), ("overlay.gif", "unknown picture extension '.gif'; use one of .png, .jpg, .jpeg, .webp"),
                                              ("overlay", "unknown picture extension '(none)'")])
def test_text_command_refuses_a_bad_out_in_one_line(tmp_path: Path, out: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["text", str(LABEL_PHOTO), "--out", str(tmp_path / out)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("shadematch text: --out") and message in err
    if out.startswith("missing"):
        assert str(tmp_path / "missing") in err and not (tmp_path / "missing").exists()
    assert list(tmp_path.iterdir()) == []
