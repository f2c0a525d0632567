"""The `shadematch` command: JSON output, one-line errors, help for every command."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from runtime.cli import build_parser, main

from .conftest import DEMO


def test_query_json(demo_bundle: Path, demo_queries: list[Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["query", "--bundle", str(demo_bundle), str(demo_queries[0]), str(demo_queries[1]), "--json"]) == 0
    results = json.loads(capsys.readouterr().out)["results"]
    assert [r["image"] for r in results] == [str(demo_queries[0]), str(demo_queries[1])]
    assert all(len(r["matches"]) == 7 for r in results)
    assert set(results[0]["matches"][0]) == {"id", "title", "score", "stage", "group", "image", "fields"}


def test_query_text_output(demo_bundle: Path, demo_queries: list[Path], capsys: pytest.CaptureFixture[str]) -> None:
    photo = DEMO / "images" / "god-morgon-orange-red-grapefruit-juice_query.jpg"  # its label reads "grapefruit"
    assert main(["query", "--bundle", str(demo_bundle), str(photo), "--top", "4"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == str(photo) and lines[1].startswith("  read: ") and "grapefruit" in lines[1]
    assert len(lines) == 6 and "[visual]" in lines[2]
    assert main(["query", "--bundle", str(demo_bundle), str(photo), "--top", "4", "--ocr", "off"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 5 and "[visual]" in lines[1]


def test_eval_json_has_every_field(demo_bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "--bundle", str(demo_bundle), "--queries", str(DEMO / "queries.csv"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["queries"] == 12
    for key in ("map7_visual", "map7", "top1", "top1_visual"):
        assert 0.0 <= report[key] <= 1.0
    assert set(report["ablation"]) == {str(k) for k in range(1, 7)}
    assert set(report["ablation"]["3"]) == {"map7", "improved_pct", "impaired_pct"}
    # the demo bundle reads labels: the report is the fused search's, and the same figures without the words
    assert report["ocr"]["photos_with_text"] >= 8 and report["ocr"]["label_weight"] > 0
    assert set(report["ocr_off"]) >= {"map7", "top1", "products", "subsets"}
    assert main(["eval", "--bundle", str(demo_bundle), "--queries", str(DEMO / "queries.csv"), "--json", "--ocr", "off"]) == 0
    off = json.loads(capsys.readouterr().out)
    assert "ocr_off" not in off and off["map7"] == pytest.approx(report["ocr_off"]["map7"])
    assert report["subsets"]["Packages"]["queries"] == 12
    assert report["k"] == 1 and report["map7"] == report["ablation"]["1"]["map7"]
    assert report["vote"] == 10 and set(report["without_vote"]) == {"map7", "top1"}
    # what a shopper sees: one result per product
    assert set(report["products"]) == {"top1", "mrr7", "recall7"}
    assert report["products"]["top1"] == report["top1"]  # the same first result, image- or product-level
    assert report["products"]["top1"] <= report["products"]["mrr7"] <= report["products"]["recall7"]
    assert set(report["subsets"]["Packages"]["products"]) == {"top1", "mrr7", "recall7"}


def test_info(demo_bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "--bundle", str(demo_bundle)]) == 0
    out = capsys.readouterr().out
    assert "checksums OK" in out and "24 items" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["query", "--bundle", "/nonexistent/bundle", "x.jpg"], "no such bundle"),
        (["eval", "--bundle", "/nonexistent/bundle", "--queries", "/nonexistent/q.csv"], "no such file"),
        (["build", "--catalog", "/nonexistent/c.csv", "--out", "/tmp/never-written"], "no such file"),
    ],
)
def test_failures_exit_non_zero_with_one_line(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and err.startswith(f"shadematch {argv[0]}:")


def test_unreadable_photo_is_one_line(demo_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photo = tmp_path / "photo.jpg"
    photo.write_text("this is not a jpeg")
    assert main(["query", "--bundle", str(demo_bundle), str(photo)]) == 1
    assert "not a recognised image file" in capsys.readouterr().err


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert {"query", "info", "eval", "build", "demo", "export-model"} <= set(commands)
    for name in commands:
        with pytest.raises(SystemExit) as exit_info:
            main([name, "--help"])
        assert exit_info.value.code == 0
        assert "usage: shadematch " + name in capsys.readouterr().out
