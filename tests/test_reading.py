"""Reading the label at query time: DB regions in numpy, the CTC recogniser, the reader on real and drawn photos."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from runtime.describe.modelcard import InputSpec, ModelCard, card_path_for
from runtime.errors import ModelCardError
from runtime.reading.reader import DEFAULT_DETECTOR, DEFAULT_RECOGNISER, MAX_LINES, LabelReader, product_box
from runtime.reading.recognise import Recogniser
from runtime.reading.regions import label_runs, text_regions

from .conftest import DEMO

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")


@pytest.fixture(scope="module")
def reader():
    with LabelReader.open(threads=2) as opened:
        yield opened


def _drawn(lines: list[tuple[str, int]], size: tuple[int, int] = (900, 600)) -> Image.Image:
    """Dark text on a light pack, one line per (text, pixel height)."""
    if not FONT.is_file():
        pytest.skip("needs the DejaVu fonts (fonts-dejavu-core)")
    image = Image.new("RGB", size, (236, 228, 214))
    draw = ImageDraw.Draw(image)
    y = 40
    for text, px in lines:
        draw.text((60, y), text, font=ImageFont.truetype(str(FONT), px), fill=(40, 20, 30))
        y += int(px * 1.8)
    return image


def _flood_fill_components(mask: np.ndarray) -> list[set[tuple[int, int]]]:
    """8-connected components by breadth-first search: the reference for label_runs."""
    seen = np.zeros_like(mask, dtype=bool)
    components = []
    for start in zip(*np.nonzero(mask)):
        if seen[start]:
            continue
        seen[start] = True
        queue, members = [start], set()
        while queue:
            r, c = queue.pop()
            members.add((int(r), int(c)))
            for dr in (-1, 0, 1):
                for dc in (-1, 0, 1):
                    rr, cc = r + dr, c + dc
                    if 0 <= rr < mask.shape[0] and 0 <= cc < mask.shape[1] and mask[rr, cc] and not seen[rr, cc]:
                        seen[rr, cc] = True
                        queue.append((rr, cc))
        components.append(members)
    return components


@pytest.mark.parametrize("seed", range(5))
def test_run_labelling_equals_flood_fill(seed: int) -> None:
    mask = np.random.default_rng(seed).random((40, 60)) > 0.55
    mask[np.random.default_rng(seed).random(40) > 0.6] = False  # rows without text, which the runs skip
    rows, starts, ends, labels = label_runs(mask)
    ours: dict[int, set] = {}
    for r, s, e, label in zip(rows, starts, ends, labels):
        ours.setdefault(int(label), set()).update((int(r), c) for c in range(s, e))
    assert sorted(map(sorted, ours.values())) == sorted(map(sorted, _flood_fill_components(mask)))


def test_regions_are_grown_boxes_of_the_confident_blobs() -> None:
    probability = np.zeros((100, 200), np.float32)
    probability[10:20, 20:120] = 0.9  # a text line
    probability[50:60, 30:60] = 0.8  # a shorter one
    probability[80:82, 150:152] = 0.95  # a speck: too few pixels
    probability[70:90, 170:190] = 0.35  # above the threshold, not confident enough as a region
    boxes, scores = text_regions(probability, threshold=0.3, box_threshold=0.5, unclip_ratio=1.6)
    assert len(boxes) == 2 and scores[0] >= scores[1]
    grow = 100 * 10 * 1.6 / (2 * 110)  # area * ratio / perimeter of the first region
    np.testing.assert_allclose(boxes[0], [20 - grow, 10 - grow, 120 + grow, 20 + grow], atol=1e-4)
    assert boxes[1][0] < 30 and boxes[1][2] > 60
    assert text_regions(np.zeros((50, 50), np.float32))[0].shape == (0, 4)
    with pytest.raises(ValueError, match="2-D"):
        text_regions(np.zeros((1, 50, 50), np.float32))


def test_region_scores_are_the_mean_probability_of_their_pixels() -> None:
    probability = np.zeros((64, 96), np.float32)
    rng = np.random.default_rng(3)
    probability[5:9, 10:50] = rng.uniform(0.4, 1.0, (4, 40))  # rows 0-4, 9-29 and 40-63 hold no text
    probability[30:40, 60:90] = rng.uniform(0.5, 0.9, (10, 30))
    _, scores = text_regions(probability, threshold=0.3, box_threshold=0.0)
    expected = sorted([probability[5:9, 10:50].astype(np.float64).mean(),
                       probability[30:40, 60:90].astype(np.float64).mean()], reverse=True)
    np.testing.assert_allclose(scores, expected, rtol=1e-6)


def test_regions_are_capped() -> None:
    probability = np.zeros((200, 200), np.float32)
    for dy in range(3):
        for dx in range(3):
            probability[dy::5, dx::5] = 0.9  # 1,600 separate 3 x 3 blobs
    boxes, _ = text_regions(probability, max_regions=50)
    assert len(boxes) == 50


def test_recogniser_reads_a_drawn_line(reader: LabelReader) -> None:
    line = _drawn([("SHADE 169", 64)], size=(520, 120))
    text, confidence = reader.recogniser.read([line.crop((40, 20, 480, 110))])[0]
    assert text.replace(" ", "") == "SHADE169" and confidence > 0.9


def test_reader_reads_the_lines_of_a_drawn_pack_with_their_boxes(reader: LabelReader) -> None:
    pack = _drawn([("ROUGE ECLAT", 70), ("No. 169", 48), ("Rosewood", 40)])
    words = reader.read(pack)
    texts = {w.text.replace(" ", "").lower() for w in words}
    assert {"rougeeclat", "no.169", "rosewood"} <= texts
    for word in words:
        x0, y0, x1, y1 = word.box
        assert 0 <= x0 < x1 <= pack.width and 0 <= y0 < y1 <= pack.height
    # the region limits the reading: the lower half holds only the shade name
    lower = reader.read(pack, (0, 250, pack.width, pack.height))
    assert [w.text.lower() for w in lower] == ["rosewood"] and lower[0].box[1] >= 250


def test_reader_on_a_real_store_photo(reader: LabelReader) -> None:
    photo = Image.open(DEMO / "images" / "god-morgon-orange-red-grapefruit-juice_query.jpg").convert("RGB")
    assert "grapefruit" in [w.text.lower() for w in reader.read(photo)]


def test_photos_without_text_upside_down_or_full_of_tiny_text_answer_normally(reader: LabelReader) -> None:
    assert reader.read(Image.new("RGB", (640, 480), (120, 160, 90))) == []
    pack = _drawn([("ROUGE ECLAT", 70), ("No. 169", 48)])
    assert isinstance(reader.read(pack.rotate(180)), list)  # read or not, never an error
    crowded = Image.new("RGB", (1280, 960), (250, 250, 250))
    draw = ImageDraw.Draw(crowded)
    for i in range(4000):  # thousands of tiny text boxes
        draw.text((8 + (i % 80) * 16, 4 + (i // 80) * 19), "ab", fill=(0, 0, 0))
    assert len(reader.read(crowded)) <= MAX_LINES
    assert reader.read(pack, (10, 10, 14, 14)) == []  # a region too small to hold text


def test_product_box_maps_the_salient_cells_back_to_the_photo() -> None:
    spec = InputSpec("image", 320, 320, (127.0,) * 3, (128.0,) * 3, "shorter_side_center_crop")
    saliency = np.zeros((10, 10), np.float32)
    saliency[2:6, 4:8] = 1.0
    # a 1600 x 1000 photo: the model saw its centre 1000 x 1000 square (x from 300)
    x0, y0, x1, y1 = product_box(saliency, (1600, 1000), spec, margin=0.0)
    assert (x0, y0, x1, y1) == (300 + 400, 200, 300 + 800, 600)
    grown = product_box(saliency, (1600, 1000), spec, margin=0.5)
    assert grown == (500, 0, 1300, 800)
    whole = dataclasses.replace(spec, resize="longer_side_multiple_32")
    assert product_box(saliency, (1600, 1000), whole) == (0, 0, 1600, 1000)


def test_cards_are_checked(reader: LabelReader, tmp_path: Path) -> None:
    card = ModelCard.load(card_path_for(DEFAULT_RECOGNISER))
    broken = dataclasses.replace(card, raw={**card.raw, "ctc": {}})
    with pytest.raises(ModelCardError, match="CTC characters"):
        Recogniser(reader.recogniser.backend, broken)
    with pytest.raises(ModelCardError, match="not a text detector"):
        LabelReader(card, reader.detector_backend, reader.recogniser)
    with pytest.raises(ModelCardError, match="not found"):
        LabelReader.open(tmp_path / "missing.onnx", DEFAULT_RECOGNISER)
    assert ModelCard.load(card_path_for(DEFAULT_DETECTOR)).input.color == "BGR"
