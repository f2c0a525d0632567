"""`shadematch bench`: the report's structure, and stage times that are real and add up to the total."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from runtime.tools.bench import STAGES, THROUGHPUT_BATCHES, to_markdown
from runtime.cli import main


@pytest.mark.slow
def test_bench_json_on_the_demo_bundle(demo_bundle: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code = main(["bench", "--bundle", str(demo_bundle), "--json", "--repeats", "4", "--threads", "1",
                 "--throughput-rounds", "1", "--report", str(tmp_path / "reports")])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["bundle"]["items"] == 24 and report["repeats"] == 4
    assert report["machine"]["cores"] >= 1 and report["machine"]["libraries"]["onnxruntime"]
    assert set(report["stages"]) == set(STAGES)
    # The default MANet runs EAST inside its own graph: the text stage is reported inside visual_model, not timed.
    assert report["stages"]["text_model"]["inside"] == "visual_model"
    assert report["stages"]["barcode"]["absent"]  # the demo catalogue has no GTINs
    timed = {name: row for name, row in report["stages"].items() if "p50_ms" in row}
    assert set(timed) == set(STAGES) - {"text_model", "barcode"}
    for name, row in timed.items():
        assert row["n"] == 4 and 0 < row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"], name
    # Stages are timed back to back inside the total: their means sum to the total's mean, give or take the
    # few microseconds of bookkeeping between calls.
    stage_sum = sum(row["mean_ms"] for row in timed.values())
    total = report["total"]["mean_ms"]
    assert stage_sum <= total and stage_sum >= 0.95 * total
    assert report["stages"]["visual_model"]["p50_ms"] > report["stages"]["refinement"]["p50_ms"]
    assert set(report["throughput"]) == {str(b) for b in THROUGHPUT_BATCHES}
    assert all(row["images_per_s"] > 0 for row in report["throughput"].values())
    assert report["load"]["bundle_open_verify_s"] > 0 and report["load"]["retriever_open_s"] > 0
    assert report["peak_rss_mb"] > 50
    written = json.loads((tmp_path / "reports" / "bench.json").read_text())
    assert written["stages"].keys() == report["stages"].keys()
    assert "| visual_model |" in (tmp_path / "reports" / "bench.md").read_text()


def test_bench_with_a_queries_directory(demo_bundle: Path, demo_queries: list[Path], capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bench", "--bundle", str(demo_bundle), "--queries", str(demo_queries[0].parent), "--repeats", "2",
                 "--threads", "1", "--throughput-rounds", "0"])
    assert code == 0
    out = capsys.readouterr().out
    assert out.startswith("# shadematch bench") and "| **total** |" in out
    assert "photos/s" not in out  # latency only: no throughput table


def test_bench_refuses_a_missing_queries_directory(demo_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--bundle", str(demo_bundle), "--queries", str(tmp_path / "nope")]) == 1
    assert "not a directory of query photos" in capsys.readouterr().err


def test_markdown_marks_a_text_model_inside_the_graph() -> None:
    row = {"p50_ms": 1.0, "p95_ms": 2.0, "p99_ms": 3.0, "mean_ms": 1.5, "n": 1}
    report = {
        "machine": {"cpu": "x", "cores": 2, "cores_usable": 2, "ram_gib": 1, "os": "o", "python": "3", "libraries": {}},
        "bundle": {"model": "manet", "items": 1, "index": "exact", "dim": 8}, "backend": "onnxruntime", "threads": 1,
        "repeats": 1, "queries": 1, "load": {"bundle_open_verify_s": 0.1},
        "stages": {"visual_model": row, "text_model": {"inside": "visual_model", "why": "MANet"}},
        "total": row, "throughput": {"1": {"images_per_s": 1.0, "ms_per_batch": 1.0}}, "peak_rss_mb": 1.0,
    }
    assert "| text_model | inside visual_model (MANet) |" in to_markdown(report)


def test_bench_reports_no_text_stage_for_the_imagenet_trunk(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("sklearn")
    from export.bundle.build import BuildOptions, build_bundle

    from .conftest import DEMO, MODEL

    build_bundle(DEMO / "catalog.csv", tmp_path / "imagenet", BuildOptions(model=MODEL, progress=False, calibration=None))
    assert main(["bench", "--bundle", str(tmp_path / "imagenet"), "--json", "--repeats", "2", "--threads", "1",
                 "--throughput-rounds", "0"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["throughput"] == {}
    assert report["bundle"]["model"] == MODEL.stem
    assert report["stages"]["text_model"]["absent"] is True


@pytest.mark.slow
def test_bench_compare_runs_both_bundles_and_gives_ratios(demo_bundle: Path, demo_queries: list[Path], tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bench", "--bundle", str(demo_bundle), "--compare", str(demo_bundle), "--rounds", "1", "--repeats", "3",
                 "--threads", "1", "--ocr", "off", "--queries", str(demo_queries[0].parent), "--json",
                 "--report", str(tmp_path / "cmp")])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    rows = summary["rows"]
    for name in ("total p50_ms", "total p95_ms", "visual_model p50_ms", "srmac p50_ms", "peak RSS MiB",
                 *(f"photos/s batch {b}" for b in THROUGHPUT_BATCHES)):
        row = rows[name]
        assert row["reference"] > 0 and row["candidate"] > 0
        assert row["ratio"] == pytest.approx(row["candidate"] / row["reference"])
    assert "text_detection p50_ms" not in rows  # OCR off: not a stage of either run
    # each side ran in its own process: two reports, each with its own peak RSS
    assert len(summary["runs"]["reference"]) == len(summary["runs"]["candidate"]) == 1
    assert "candidate / reference" in (tmp_path / "cmp" / "compare.md").read_text()


def test_bench_compare_refuses_a_folder_that_is_not_a_checkout(demo_bundle: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bench", "--bundle", str(demo_bundle), "--compare", str(demo_bundle), "--reference-code", str(tmp_path)])
    assert code != 0
    assert "not a shadematch checkout" in capsys.readouterr().err


@pytest.mark.slow
def test_batch_ceiling_script_measures_every_figure_on_the_same_photos(demo_bundle: Path, tmp_path: Path) -> None:
    """benchmarks/bench/batch_ceiling.py (the bound on batch 32 / batch 1 quoted in benchmarks/bench/README.md)."""
    out = tmp_path / "ceiling.json"
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "bench" / "batch_ceiling.py"
    subprocess.run([sys.executable, str(script), "--bundle", str(demo_bundle), "--rounds", "1", "--threads", "1",
                    "--queries", str(Path(__file__).resolve().parents[1] / "export" / "demo" / "images"),
                    "--out", str(out)], check=True, capture_output=True, cwd=script.parents[2])
    [result] = json.loads(out.read_text())
    assert result["photos"] == 32 and result["rounds"] == 1
    rates = result["photos_per_s"]
    assert set(rates) == {"batch 1", "batch 32", "model alone, photo by photo", "model alone, one run of 32",
                          "model alone, 1 thread x 2"}
    assert all(rate > 0 for rate in rates.values())
    # The ceiling is the fastest model-alone rate over batch 1; whole queries also decode and pool, so batch 1
    # is slower than the model alone photo by photo.
    assert rates["batch 1"] < rates["model alone, photo by photo"]
    assert result["ceiling_over_batch1"] >= rates["model alone, photo by photo"] / rates["batch 1"] - 0.01
