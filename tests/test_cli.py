"""The `shadematch` command: JSON output, one-line errors, help for every command."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Iterator

import pytest

from runtime.cli import build_parser, main

from .conftest import DEMO


def test_query_json(demo_bundle: Path, demo_queries: list[Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["query", "--bundle", str(demo_bundle), str(demo_queries[0]), str(demo_queries[1]), "--json"]) == 0
    results = json.loads(capsys.readouterr().out)["results"]
    assert [r["image"] for r in results] == [str(demo_queries[0]), str(demo_queries[1])]
    assert all(len(r["matches"]) == 7 for r in results)
    assert set(results[0]["matches"][0]) == {"rank", "confidence", "score", "stage", "product", "title_read"}
    assert set(results[0]["matches"][0]["product"]) == {"id", "title", "group", "image", "fields"}


def test_query_text_output(demo_bundle: Path, demo_queries: list[Path], capsys: pytest.CaptureFixture[str]) -> None:
    photo = DEMO / "images" / "god-morgon-orange-red-grapefruit-juice_query.jpg"  # its label reads "grapefruit"
    assert main(["query", "--bundle", str(demo_bundle), str(photo), "--top", "4"]) == 0
    lines = capsys.readouterr().out.splitlines()
    # a headline that names the product and how sure it is, the words read, a table, then a legend
    assert lines[0].startswith(f"{photo}: God Morgon Orange Red Grapefruit Juice") and "confidence" in lines[0]
    assert lines[1].startswith("      read on the photo: ") and "grapefruit" in lines[1]
    assert lines[2].split() == ["#", "sure", "score", "stage", "product", "(id)"]
    assert [line.split()[0] for line in lines[3:7]] == ["1", "2", "3", "4"] and "visual" in lines[3]
    legend = "\n".join(lines[8:])
    assert "sure: the calibrated probability" in legend and "no matching product" in legend
    assert "a lower score may rank higher" in legend and "text = " in legend
    assert main(["query", "--bundle", str(demo_bundle), str(photo), "--top", "4", "--ocr", "off"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split()[0] == "#" and len([line for line in lines if line[:4].strip().isdigit()]) == 4


def test_query_goes_on_past_an_unusable_photo(demo_bundle: Path, demo_queries: list[Path], tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    not_an_image = tmp_path / "notes.jpg"
    not_an_image.write_text("not a photo")
    photos = [str(demo_queries[0]), str(tmp_path / "missing.jpg"), str(demo_queries[1]), str(not_an_image)]
    assert main(["query", "--bundle", str(demo_bundle), *photos]) == 1
    captured = capsys.readouterr()
    headlines = [line for line in captured.out.splitlines() if line.startswith(tuple(photos))]
    assert len(headlines) == 4 and "no such file" in headlines[1] and "not a recognised image" in headlines[3]
    assert "cannot be used" not in headlines[0] + headlines[2]
    errors = captured.err.strip().splitlines()
    # each error names the photo's place among all of them, not within the batch that went on after the first
    assert errors[0].startswith("shadematch query: image 2 of 4: ") and "no such file" in errors[0]
    assert errors[1].startswith("shadematch query: image 4 of 4: ") and "not a recognised image" in errors[1]
    assert errors[2] == "shadematch query: 2 of 4 photos could not be used" and len(errors) == 3
    # the usable photos get the answers they get without the others
    assert main(["query", "--bundle", str(demo_bundle), *photos, "--json"]) == 1
    mixed = json.loads(capsys.readouterr().out)["results"]
    assert main(["query", "--bundle", str(demo_bundle), photos[0], photos[2], "--json"]) == 0
    clean = json.loads(capsys.readouterr().out)["results"]
    assert [r["image"] for r in mixed] == photos and [r["error"] is None for r in mixed] == [True, False, True, False]
    for got, want in zip((mixed[0], mixed[2]), clean):
        assert [m["product"]["id"] for m in got["matches"]] == [m["product"]["id"] for m in want["matches"]]
        assert [m["score"] for m in got["matches"]] == pytest.approx([m["score"] for m in want["matches"]], abs=1e-5)


@pytest.mark.slow
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
    assert "not found   under confidence 0." in out and "fitted by build on 48 store-like views" in out
    assert "query views the photo alone" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["query", "--bundle", "/nonexistent/bundle", "x.jpg"], "no such bundle"),
        (["eval", "--bundle", "/nonexistent/bundle", "--queries", "/nonexistent/q.csv"], "no such file"),
        (["build", "--catalog", "/nonexistent/c.csv", "--out", "/tmp/never-written"], "no such file"),
        # --bundle is optional alike for every command that reads one (the executable finds the one beside it)
        (["bench"], "--bundle is required"),
        (["tune", "--queries", "q.csv", "--out", "/tmp/never-written"], "--bundle is required"),
        (["update", "--add", "a.csv", "--out", "/tmp/never-written"], "--bundle is required"),
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
    captured = capsys.readouterr()
    assert "not a recognised image file" in captured.out.splitlines()[0] and "Traceback" not in captured.err
    assert captured.err.strip().splitlines() == ["shadematch query: " + captured.out.splitlines()[0].split("(", 1)[1][:-1]]


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert {"query", "info", "eval", "build", "demo", "export-model"} <= set(commands)
    for name in commands:
        with pytest.raises(SystemExit) as exit_info:
            main([name, "--help"])
        assert exit_info.value.code == 0
        assert "usage: shadematch " + name in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["query", "--top", "0", "x.jpg"], "argument --top: expected an integer >= 1, got 0"),
        (["query", "--k", "-1", "x.jpg"], "argument --k: expected an integer >= 0, got -1"),
        (["query", "--threads", "0", "x.jpg"], "argument --threads: expected an integer >= 1, got 0"),
        (["query", "--top", "seven", "x.jpg"], "argument --top: expected an integer >= 1, got 'seven'"),
        (["kiosk", "--port", "65536"], "argument --port: expected an integer in [0, 65535], got 65536"),
        (["kiosk", "--timeout", "nan"], "argument --timeout: expected a number > 0, got nan"),
        (["bench", "--repeats", "0"], "argument --repeats: expected an integer >= 1, got 0"),
        (["eval", "--queries", "q.csv", "--batch-size", "0"], "argument --batch-size: expected an integer >= 1"),
        (["build", "--catalog", "c.csv", "--out", "o", "--k", "0"], "argument --k: expected an integer >= 1"),
        (["build", "--catalog", "c.csv", "--out", "o", "--shrinkage", "1.5"], "argument --shrinkage: expected a number in [0, 1]"),
        (["build", "--catalog", "c.csv", "--out", "o", "--label-weight", "-1"], "argument --label-weight: expected a number >= 0"),
        (["synth-catalog", "--items", "5", "--dim", "1", "--out", "o"], "argument --dim: expected an integer >= 2"),
        (["train", "--catalog", "c.csv", "--out", "o", "--size", "100"], "argument --size: expected a positive multiple of 32"),
        (["engine", "build", "--onnx", "m.onnx", "--max-batch", "0"], "argument --max-batch: expected an integer >= 1"),
    ],
)
def test_bad_numbers_are_usage_errors_naming_the_range(argv: list[str], error: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and error in err.splitlines()[-1]


@pytest.mark.parametrize(("argv", "dest", "value"), [(["query", "--k", "0", "x.jpg"], "k", 0),
                                                     (["kiosk", "--port", "0"], "port", 0),
                                                     (["build", "--catalog", "c", "--out", "o", "--vote", "0"], "vote", 0)])
def test_zero_keeps_its_meaning_where_it_has_one(argv: list[str], dest: str, value: int) -> None:
    """--k 0 is visual-only, --port 0 a free port, --vote 0 no product vote."""
    assert getattr(build_parser().parse_args(argv), dest) == value


def _command_parsers(parser: argparse.ArgumentParser, prefix: str = "") -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every (sub)command's parser, nested ones (`engine build`) included, by its command line."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield f"{prefix}{name}", sub
                yield from _command_parsers(sub, f"{prefix}{name} ")


def test_every_option_states_its_default() -> None:
    missing = []
    for command, parser in _command_parsers(build_parser()):
        for action in parser._actions:
            if (not action.option_strings or isinstance(action, (argparse._HelpAction, argparse._VersionAction,
                                                                 argparse._StoreTrueAction)) or action.required):
                continue
            if "default" not in (action.help or ""):
                missing.append(f"{command} {action.option_strings[0]}")
    assert not missing, missing


def test_top_level_help_lists_the_commands_in_three_groups(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    titles = ["query time: answer photos with a bundle", "catalogue: make or change a bundle",
              "models and training: the models a bundle carries"]
    blocks = {block.splitlines()[0]: [line.split()[0] for line in block.splitlines()[1:]]
              for block in out.split("\n\n") if block.splitlines()[0] in titles}
    assert list(blocks) == titles
    assert blocks[titles[0]] == ["query", "info", "eval", "text", "kiosk", "feedback", "bench"]
    assert {"build", "update", "tune", "demo"} <= set(blocks[titles[1]])
    assert {"train", "export-model", "engine", "quantize", "text-train"} <= set(blocks[titles[2]])
    commands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert sorted(sum(blocks.values(), [])) == sorted(commands)  # each command once, none left out
