"""export.synthetic.text_images (synthetic EAST training images) and export.text.labels (targets, sample reader)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")
PIL_Image = pytest.importorskip("PIL.Image")

from export.synthetic import text_images as synth  # noqa: E402
from export.text.labels import (  # noqa: E402
    LabelsError,
    decode_reference,
    make_targets,
    quad_rectangle,
    read_samples,
    rectangle_corners,
    shrink_quad,
)
from runtime.errors import ShadematchError  # noqa: E402

try:
    FONTS = synth.find_fonts()
except ShadematchError as exc:  # pragma: no cover - depends on the machine
    pytestmark = pytest.mark.skip(reason=str(exc))
    FONTS = []

SIZE = 320


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synth.generate(tmp_path_factory.mktemp("synth") / "set", count=8, seed=11, size=SIZE)


def signed_area(quad: np.ndarray) -> float:
    """Shoelace area; positive for clockwise corners in image coordinates (y grows downwards)."""
    x, y = quad[:, 0], quad[:, 1]
    return 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


def inside(points: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """Points (m, 2) inside a convex clockwise quad."""
    result = np.ones(len(points), dtype=bool)
    for k in range(4):
        a, b = quad[k], quad[(k + 1) % 4]
        cross = (b[0] - a[0]) * (points[:, 1] - a[1]) - (b[1] - a[1]) * (points[:, 0] - a[0])
        result &= cross >= 0
    return result


def segment_distance(points: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = b - a
    t = np.clip(((points - a) @ d) / max(float(d @ d), 1e-12), 0, 1)
    return np.linalg.norm(points - (a + t[:, None] * d), axis=1)


def quad_distance(points: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """0 inside the quad, else the distance to its outline."""
    dist = np.min([segment_distance(points, quad[k], quad[(k + 1) % 4]) for k in range(4)], axis=0)
    return np.where(inside(points, quad), 0.0, dist)


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


# --------------------------------------------------------------------------------------------------- generator
def test_same_seed_is_byte_identical_with_any_number_of_workers(sample_dir: Path, tmp_path: Path) -> None:
    again = synth.generate(tmp_path / "again", count=8, seed=11, size=SIZE)
    parallel = synth.generate(tmp_path / "parallel", count=8, seed=11, size=SIZE, workers=2)
    reference = files(sample_dir)
    assert sorted(reference) == [f"{i:06d}.jpg" for i in range(8)] + ["labels.jsonl"]
    assert files(again) == reference
    assert files(parallel) == reference
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary folders left behind"


def test_different_seeds_differ(sample_dir: Path, tmp_path: Path) -> None:
    other = files(synth.generate(tmp_path / "other", count=3, seed=12, size=SIZE))
    reference = files(sample_dir)
    assert all(other[f"{i:06d}.jpg"] != reference[f"{i:06d}.jpg"] for i in range(3))
    assert other["labels.jsonl"] != reference["labels.jsonl"]


def test_generate_replaces_a_sample_set_but_not_other_folders(tmp_path: Path) -> None:
    out = synth.generate(tmp_path / "set", count=2, seed=1, size=128)
    synth.generate(out, count=1, seed=1, size=128)
    assert sorted(p.name for p in out.iterdir()) == ["000000.jpg", "labels.jsonl"]
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(ShadematchError, match="not a text sample directory"):
        synth.generate(precious, count=1, seed=1)
    assert (precious / "notes.txt").read_text() == "keep me"


def test_labels_are_valid_quads(sample_dir: Path) -> None:
    samples = read_samples(sample_dir)
    assert len(samples) == 8
    total = 0
    for sample in samples:
        with PIL_Image.open(sample.image) as im:
            assert im.mode == "RGB" and im.size == (SIZE, SIZE)
        assert sample.quads.shape == (len(sample.texts), 4, 2) and sample.ignore.shape == (len(sample.texts),)
        assert all(text.strip() for text in sample.texts)
        for quad, ignored in zip(sample.quads.astype(np.float64), sample.ignore):
            assert quad.min() >= -1.0 and quad.max() <= SIZE + 1.0
            assert signed_area(quad) > 0, f"{sample.image.name}: quad not clockwise or empty: {quad.tolist()}"
            height = min(np.linalg.norm(quad[3] - quad[0]), np.linalg.norm(quad[2] - quad[1]))
            assert bool(ignored) == (height < synth.MIN_TEXT_HEIGHT)
        total += len(sample.texts)
    assert total >= 16


def test_text_is_where_the_quads_say(sample_dir: Path) -> None:
    """Local contrast inside each quad beats the contrast of a ring of background around it."""
    ratios = []
    for sample in read_samples(sample_dir):
        gray = np.asarray(PIL_Image.open(sample.image).convert("L"), dtype=np.float32)
        edges = np.abs(cv2.Laplacian(gray, cv2.CV_32F))
        taken = np.zeros(gray.shape, np.uint8)
        for quad in sample.quads:
            cv2.fillConvexPoly(taken, np.round(quad * 16).astype(np.int32), 1, cv2.LINE_8, shift=4)
        taken = cv2.dilate(taken, np.ones((3, 3), np.uint8))
        for quad, ignored in zip(sample.quads, sample.ignore):
            height = min(np.linalg.norm(quad[3] - quad[0]), np.linalg.norm(quad[2] - quad[1]))
            if ignored or height < 12:
                continue
            centre = quad.mean(axis=0)
            grown = centre + (quad - centre) * (1 + height / np.linalg.norm(quad - centre, axis=1, keepdims=True))
            region = np.zeros(gray.shape, np.uint8)
            ring = np.zeros(gray.shape, np.uint8)
            cv2.fillConvexPoly(region, np.round(quad * 16).astype(np.int32), 1, cv2.LINE_8, shift=4)
            cv2.fillConvexPoly(ring, np.round(grown * 16).astype(np.int32), 1, cv2.LINE_8, shift=4)
            ring &= 1 - taken
            if ring.sum() < 20:
                continue
            ratios.append(edges[region > 0].mean() / (edges[ring > 0].mean() + 1.0))
    assert len(ratios) >= 10
    ratios = np.array(ratios)
    assert np.median(ratios) > 2.0, ratios
    assert np.mean(ratios > 1.2) >= 0.75, ratios


@pytest.mark.parametrize("index", range(6))
def test_clean_renderings_quads_hug_the_ink(index: int) -> None:
    """Flat background, no noise: every ink pixel lies in a quad, and every quad edge touches ink.

    Pixel centres are 0.5 px from a pixel's edge, and bilinear resampling of a glyph's one-pixel tip (the top
    of a 'V') can drop it under the ink threshold: hence the 1 px and 2 px tolerances.
    """
    image, quads, texts, ignore, _quality = synth.render_sample(5, index, SIZE, FONTS, clean=True)
    assert len(quads) == len(texts) == len(ignore) >= 1
    diff = np.abs(image.astype(np.int16) - image[0, 0].astype(np.int16)).max(axis=2)
    ys, xs = np.nonzero(diff > 40)
    ink = np.stack([xs + 0.5, ys + 0.5], axis=1)  # pixel centres, the quads' continuous coordinates
    nearest = np.min([quad_distance(ink, q) for q in quads], axis=0)
    assert nearest.max() <= 1.0, f"ink {nearest.max():.2f} px outside every quad"
    for quad in quads:
        height = min(np.linalg.norm(quad[3] - quad[0]), np.linalg.norm(quad[2] - quad[1]))
        if height < 10:
            continue
        mine = ink[inside(ink, quad)]
        assert len(mine) > 0
        for k in range(4):
            gap = segment_distance(mine, quad[k], quad[(k + 1) % 4]).min()
            assert gap <= 2.0, f"edge {k} of {quad.tolist()} is {gap:.2f} px from the ink"


def test_find_fonts_names_the_debian_package(tmp_path: Path) -> None:
    with pytest.raises(ShadematchError, match="fonts-dejavu-core"):
        synth.find_fonts(tmp_path)


def test_photo_backgrounds_are_optional_and_used(tmp_path: Path) -> None:
    photos = tmp_path / "photos" / "Fruit"
    photos.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for k in range(3):
        PIL_Image.fromarray(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)).save(photos / f"{k}.jpg")
    out = synth.generate(tmp_path / "set", count=6, seed=2, size=128, photo_dir=tmp_path / "photos")
    assert len(read_samples(out)) == 6
    (tmp_path / "empty").mkdir()
    with pytest.raises(ShadematchError, match="no photos"):
        synth.generate(tmp_path / "x", count=1, seed=2, photo_dir=tmp_path / "empty")
    with pytest.raises(ShadematchError, match="no such photo directory"):
        synth.generate(tmp_path / "x", count=1, seed=2, photo_dir=tmp_path / "missing")
    assert not (tmp_path / "x").exists()


def test_cli_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from runtime.cli import main

    assert main(["text-data", "--out", str(tmp_path / "cli"), "--count", "2", "--seed", "4", "--size", "96"]) == 0
    assert "2 images" in capsys.readouterr().out
    assert len(read_samples(tmp_path / "cli")) == 2


# --------------------------------------------------------------------------------------------------- targets
def rectangle(cx: float, cy: float, w: float, h: float, theta: float) -> np.ndarray:
    u = np.array([math.cos(theta), math.sin(theta)])
    v = np.array([-math.sin(theta), math.cos(theta)])
    c = np.array([cx, cy])
    return np.stack([c - w / 2 * u - h / 2 * v, c + w / 2 * u - h / 2 * v, c + w / 2 * u + h / 2 * v, c - w / 2 * u + h / 2 * v])


@pytest.mark.parametrize("theta", [0.0, 0.3, -0.6, 1.2])
def test_targets_decode_back_to_the_rectangle(theta: float) -> None:
    quad = rectangle(70.3, 61.7, 90.0, 28.0, theta)
    t = make_targets(quad[None], np.array([False]), 128, 160)
    assert t["score"].shape == (1, 32, 40) and t["geometry"].shape == (5, 32, 40) and t["mask"].shape == (1, 32, 40)
    assert all(a.dtype == np.float32 for a in t.values())
    rows, cols = np.nonzero(t["score"][0])
    assert len(rows) >= 10 and set(np.unique(t["score"])) <= {0.0, 1.0}
    for i, j in zip(rows, cols):
        corners = decode_reference(t["geometry"][:, i, j], i, j)
        assert np.abs(corners - quad).max() < 0.01, (i, j, corners, quad)
    assert -math.pi / 2 < t["geometry"][4, rows[0], cols[0]] <= math.pi / 2


def test_perspective_quads_decode_to_their_bounding_rectangle(sample_dir: Path) -> None:
    checked = 0
    for sample in read_samples(sample_dir)[:4]:
        t = make_targets(sample.quads, sample.ignore, SIZE, SIZE)
        for quad, ignored in zip(sample.quads.astype(np.float64), sample.ignore):
            if ignored:
                continue
            theta, extents = quad_rectangle(quad)
            box = rectangle_corners(theta, extents)
            assert np.all(quad_distance(quad, box) < 1e-6), "the rectangle must contain the quad"
            assert np.abs(box - quad).max() < 0.25 * max(extents[1] - extents[0], extents[3] - extents[2]) + 2
            rows, cols = np.nonzero(t["score"][0])
            points = np.stack([4 * cols + 2.0, 4 * rows + 2.0], axis=1)
            for i, j in zip(rows[inside(points, quad)], cols[inside(points, quad)]):
                assert np.abs(decode_reference(t["geometry"][:, i, j], i, j) - box).max() < 2.0
                checked += 1
    assert checked > 20


@pytest.mark.parametrize("theta", [0.0, 0.3, -0.6])
def test_score_region_is_the_shrunk_quad(theta: float) -> None:
    w, h, shrink = 100.0, 30.0, 0.3
    quad = rectangle(80.0, 64.0, w, h, theta)
    t = make_targets(quad[None], np.array([False]), 128, 160, shrink=shrink)
    rows, cols = np.nonzero(t["score"][0])
    points = np.stack([4 * cols + 2.0, 4 * rows + 2.0], axis=1)
    u = np.array([math.cos(theta), math.sin(theta)])
    v = np.array([-math.sin(theta), math.cos(theta)])
    pu, pv = (points - (80.0, 64.0)) @ u, (points - (80.0, 64.0)) @ v
    assert np.all(np.abs(pu) <= w / 2 - shrink * h + 1e-6) and np.all(np.abs(pv) <= h / 2 - shrink * h + 1e-6)
    assert np.all(inside(points, quad))
    # and it is the whole shrunk rectangle: every cell point well inside it is positive
    ii, jj = np.mgrid[0:32, 0:40]
    grid = np.stack([4 * jj.ravel() + 2.0, 4 * ii.ravel() + 2.0], axis=1)
    gu, gv = (grid - (80.0, 64.0)) @ u, (grid - (80.0, 64.0)) @ v
    deep = (np.abs(gu) < w / 2 - shrink * h - 0.01) & (np.abs(gv) < h / 2 - shrink * h - 0.01)
    assert np.all(t["score"][0].ravel()[deep] == 1)
    np.testing.assert_allclose(shrink_quad(quad, shrink), rectangle(80.0, 64.0, w - 2 * shrink * h, h - 2 * shrink * h, theta), atol=1e-9)


def test_ignored_and_tiny_quads_are_masked() -> None:
    text = rectangle(40.0, 30.0, 50.0, 20.0, 0.0)
    ignored = rectangle(110.0, 30.0, 60.0, 24.0, 0.2)
    tiny = rectangle(60.0, 90.0, 40.0, 5.0, 0.0)
    t = make_targets(np.stack([text, ignored, tiny]), np.array([False, True, False]), 128, 160)
    score, mask = t["score"][0], t["mask"][0]
    ii, jj = np.mgrid[0:32, 0:40]
    points = np.stack([4 * jj.ravel() + 2.0, 4 * ii.ravel() + 2.0], axis=1)
    for quad in (ignored, tiny):
        cells = inside(points, quad).reshape(32, 40)
        assert cells.any() and np.all(mask[cells] == 0) and np.all(score[cells] == 0)
    in_text = inside(points, text).reshape(32, 40)
    assert np.all(mask[in_text] == 1) and score.sum() > 0 and np.all(score[~in_text] == 0)
    elsewhere = ~(inside(points, ignored) | inside(points, tiny)).reshape(32, 40)
    assert np.all(mask[elsewhere] == 1)
    assert np.all(t["geometry"][:, score == 0] == 0)


# --------------------------------------------------------------------------------------------------- reader
def write_labels(folder: Path, records: list) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("000000.jpg", "000001.jpg"):
        PIL_Image.new("RGB", (8, 8)).save(folder / name)
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    (folder / "labels.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


GOOD = {"image": "000000.jpg", "quads": [[[1, 1], [6, 1], [6, 4], [1, 4]]], "texts": ["No. 169"], "ignore": [False]}


@pytest.mark.parametrize("bad, message", [
    ("{not json", "not JSON"),
    ({**GOOD, "image": "000001.jpg", "quads": [[[1, 1], [6, 1], [6, 4]]]}, "quad 0"),
    ({**GOOD, "image": "000001.jpg", "texts": []}, "counts differ"),
    ({**GOOD, "image": "000001.jpg", "ignore": ["no"]}, "'ignore'"),
    ({**GOOD, "image": "missing.jpg"}, "not found"),
    ({k: v for k, v in GOOD.items() if k != "quads"}, "no 'quads'"),
    (GOOD, "already labelled on line 1"),
])
def test_bad_label_line_is_named(tmp_path: Path, bad, message: str) -> None:
    folder = write_labels(tmp_path / "set", [GOOD, bad])
    with pytest.raises(LabelsError, match=f"line 2: .*{message}"):
        read_samples(folder)


def test_reader_accepts_extra_fields_and_empty_texts(tmp_path: Path) -> None:
    teacher_style = {**GOOD, "image": "000001.jpg", "texts": [""], "source": "/photos/a.jpg"}
    samples = read_samples(write_labels(tmp_path / "set", [GOOD, "", teacher_style]))
    assert [s.image.name for s in samples] == ["000000.jpg", "000001.jpg"]
    assert samples[0].quads.shape == (1, 4, 2) and samples[0].quads.dtype == np.float32
    assert samples[0].texts == ("No. 169",) and samples[0].ignore.tolist() == [False]
    with pytest.raises(LabelsError, match="no such file"):
        read_samples(tmp_path / "nowhere")
