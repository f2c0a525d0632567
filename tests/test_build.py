"""Building bundles: bad rows by line number, --skip-bad, atomic replacement."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip("sklearn")

from export.bundle.build import BuildOptions, build_bundle  # noqa: E402
from runtime.bundle import open_bundle  # noqa: E402
from runtime.errors import BundleError, CatalogError, ModelCardError  # noqa: E402

from .conftest import DEMO  # noqa: E402


def _catalog(tmp_path: Path, extra_rows: list[str]) -> Path:
    """The first six demo rows with absolute paths, plus ``extra_rows``."""
    lines = (DEMO / "catalog.csv").read_text(encoding="utf-8").splitlines()
    header, rows = lines[0], lines[1:7]
    rows = [row.replace("images/", f"{DEMO / 'images'}/", 1) for row in rows]
    path = tmp_path / "catalog.csv"
    path.write_text("\n".join([header, *rows, *extra_rows]) + "\n", encoding="utf-8")
    return path


def _corrupt_image(tmp_path: Path) -> Path:
    bad = tmp_path / "broken.jpg"
    bad.write_bytes((DEMO / "images" / "oatly-oat-milk_query.jpg").read_bytes()[:300])
    return bad


def test_bad_rows_abort_with_line_numbers_and_leave_nothing(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path, ["x1,missing.jpg,A title,g", f"x2,{_corrupt_image(tmp_path)},Broken,g"])
    out = tmp_path / "bundle"
    with pytest.raises(CatalogError, match=r"line 8: image not found"):
        build_bundle(catalog, out, BuildOptions(progress=False, calibration=None))
    assert not out.exists()
    assert not list(tmp_path.glob(".bundle.tmp-*"))


def test_skip_bad_reports_every_skipped_row(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    catalog = _catalog(tmp_path, ["x1,missing.jpg,A title,g", f"x2,{_corrupt_image(tmp_path)},Broken,g"])
    report = build_bundle(catalog, tmp_path / "bundle", BuildOptions(progress=False, calibration=None, skip_bad=True))
    assert report.items == 6 and report.skipped == 2
    err = capsys.readouterr().err
    assert "line 8: image not found" in err and "line 9:" in err and "truncated" in err
    assert len(open_bundle(tmp_path / "bundle").catalog) == 6


def test_existing_bundle_is_kept_unless_forced_and_survives_a_failed_rebuild(tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    build_bundle(_catalog(tmp_path, []), out, BuildOptions(progress=False, calibration=None))
    before = (out / "manifest.json").read_bytes()
    with pytest.raises(BundleError, match="already exists"):
        build_bundle(_catalog(tmp_path, []), out, BuildOptions(progress=False, calibration=None))
    broken = _catalog(tmp_path, ["x1,missing.jpg,A title,g"])
    with pytest.raises(CatalogError):
        build_bundle(broken, out, BuildOptions(progress=False, calibration=None, overwrite=True))
    assert (out / "manifest.json").read_bytes() == before
    open_bundle(out)


def test_forced_rebuild_replaces_the_bundle(tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    build_bundle(_catalog(tmp_path, []), out, BuildOptions(progress=False, calibration=None))
    build_bundle(DEMO / "catalog.csv", out, BuildOptions(progress=False, calibration=None, overwrite=True))
    assert len(open_bundle(out).catalog) == 24
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_model_whose_card_does_not_match_is_refused(tmp_path: Path) -> None:
    from .conftest import MODEL

    model = tmp_path / MODEL.name
    shutil.copyfile(MODEL, model)
    shutil.copyfile(MODEL.with_name(MODEL.stem + ".card.json"), tmp_path / (MODEL.stem + ".card.json"))
    with open(model, "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ModelCardError, match="sha256 does not match"):
        build_bundle(_catalog(tmp_path, []), tmp_path / "b", BuildOptions(progress=False, calibration=None, model=model))


def test_the_tests_know_the_default_model() -> None:
    from export.bundle.build import DEFAULT_MODEL as BUILD_DEFAULT

    from .conftest import DEFAULT_MODEL

    assert BUILD_DEFAULT == DEFAULT_MODEL and DEFAULT_MODEL.is_file()


def test_skip_bad_skips_undecodable_and_overlong_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    catalog = _catalog(tmp_path, ["x1,images/a.jpg,A,g,surplus"])
    catalog.write_bytes(catalog.read_bytes() + "x2,images/b.jpg,Cr\u00e8me,g\n".encode("latin-1"))
    with pytest.raises(CatalogError, match="line 8: more fields than the header has; line 9: not UTF-8 text"):
        build_bundle(catalog, tmp_path / "bundle", BuildOptions(progress=False, calibration=None))
    report = build_bundle(catalog, tmp_path / "bundle", BuildOptions(progress=False, calibration=None, skip_bad=True, pictures=False))
    assert report.items == 6 and report.skipped == 2
    err = capsys.readouterr().err
    assert "line 8: more fields than the header has" in err and "line 9: not UTF-8 text (byte 0xe8)" in err


def test_queries_read_with_the_int8_reader_where_the_visual_model_is_int8(tmp_path: Path, demo_bundle: Path) -> None:
    """The catalogue is read with the float32 detector and recogniser; a bundle whose visual model is INT8 carries
    their INT8 siblings for its queries (the same CPU test chose all three), a float32 bundle the float32 ones."""
    from export.bundle.build import catalogue_reader, query_reader_model
    from runtime.describe.modelcard import ModelCard, card_path_for
    from runtime.reading.reader import DEFAULT_DETECTOR, DEFAULT_RECOGNISER

    for model in (DEFAULT_DETECTOR, DEFAULT_RECOGNISER):
        assert query_reader_model(model, "fp32") == model
        assert query_reader_model(model, "int8") == model.with_name(f"{model.stem}_int8.onnx")
    alone = tmp_path / DEFAULT_RECOGNISER.name  # no INT8 sibling beside it
    shutil.copyfile(DEFAULT_RECOGNISER, alone)
    shutil.copyfile(card_path_for(DEFAULT_RECOGNISER), card_path_for(alone))
    assert query_reader_model(alone, "int8") == alone
    bundle = open_bundle(demo_bundle)
    for carried in ("text_detector.onnx", "text_recogniser.onnx"):
        assert ModelCard.load(card_path_for(bundle.path / "models" / carried)).precision == bundle.card.precision
    # an update reads the rows it adds as build read the catalogue: with the float32 parents of the INT8 models
    det8, rec8 = (m.with_name(f"{m.stem}_int8.onnx") for m in (DEFAULT_DETECTOR, DEFAULT_RECOGNISER))
    assert catalogue_reader((det8, rec8)) == (DEFAULT_DETECTOR, DEFAULT_RECOGNISER)
    assert catalogue_reader((DEFAULT_DETECTOR, alone)) == (DEFAULT_DETECTOR, alone)
