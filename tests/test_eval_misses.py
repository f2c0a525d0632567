"""`shadematch eval` names the queries it got wrong and those of products not in the catalogue, which it leaves
out of every figure rather than scoring them 0."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from runtime.bundle import open_bundle
from runtime.cli import main
from runtime.tools.evaluate import miss_lines

from .conftest import DEMO

QUERIES = list(csv.DictReader(open(DEMO / "queries.csv", encoding="utf-8")))
#: Three demo photos labelled with another product of the catalogue: each is wrong at top-1 whatever the search.
MISLABELLED = {QUERIES[0]["image"]: "Yoggi-Vanilla-Yoghurt", QUERIES[1]["image"]: "Yoggi-Vanilla-Yoghurt",
               QUERIES[2]["image"]: "Alpro-Blueberry-Soyghurt"}
UNKNOWN = "Not-A-Catalogue-Product"


def _queries(path: Path, rows: list[dict[str, str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["image", "group", "subset"])
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "image": str((DEMO / row["image"]).resolve())})
    return path


def _eval(bundle: Path, queries: Path, capsys: pytest.CaptureFixture[str], *flags: str) -> str:
    assert main(["eval", "--bundle", str(bundle), "--queries", str(queries), "--ocr", "off", *flags]) == 0
    return capsys.readouterr().out


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("queries")
    labelled = [{**row, "group": MISLABELLED.get(row["image"], row["group"])} for row in QUERIES]
    unknown = {**QUERIES[3], "group": UNKNOWN}
    return {"scored": _queries(folder / "scored.csv", labelled),
            "mixed": _queries(folder / "mixed.csv", [*labelled[:5], unknown, *labelled[5:]]),
            "unknown": _queries(folder / "unknown.csv", [unknown])}


def test_wrong_and_unknown_queries_are_listed_and_unknown_ones_not_scored(
        demo_bundle: Path, tables: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    report = json.loads(_eval(demo_bundle, tables["mixed"], capsys, "--json"))
    alone = json.loads(_eval(demo_bundle, tables["scored"], capsys, "--json"))
    assert report["queries"] == alone["queries"] == len(QUERIES)
    for key in ("map7", "map7_visual", "top1", "top1_visual", "products"):
        assert report[key] == alone[key]  # the unknown query changes no figure
    assert report["not_in_catalog_count"] == report["queries_without_catalogue_items"] == 1
    assert report["not_in_catalog"] == [{"image": str((DEMO / QUERIES[3]["image"]).resolve()), "group": UNKNOWN}]
    assert len(report["wrong"]) == round((1 - report["top1"]) * report["queries"])
    wrong = {Path(w["image"]).name: w for w in report["wrong"]}
    titles = {item.id: item.title for item in open_bundle(demo_bundle).catalog}
    for image, group in MISLABELLED.items():
        entry = wrong[Path(image).name]
        assert entry["group"] == group and entry["answer"]["group"] != group
        assert entry["answer"]["title"] == titles[entry["answer"]["id"]]


def test_the_plain_output_lists_them_after_the_summary(demo_bundle: Path, tables: dict[str, Path],
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    lines = _eval(demo_bundle, tables["mixed"], capsys).splitlines()
    assert lines[0].startswith(f"{len(QUERIES)} queries (1 more not in the catalogue: left out); k = ")
    first = lines.index(next(line for line in lines if line.startswith("wrong at top-1 (")))
    shown = [line for line in lines[first + 1:] if line.startswith("  ") and "answered" in line]
    assert {Path(line.split(": ")[0].strip()).name for line in shown} >= {Path(i).name for i in MISLABELLED}
    assert lines[-2:] == ["not in the catalogue, left out of every figure (1):",
                          f"  {(DEMO / QUERIES[3]['image']).resolve()}: {UNKNOWN}"]


def test_long_lists_are_cut_with_a_pointer_to_the_json(demo_bundle: Path, tables: dict[str, Path],
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    report = json.loads(_eval(demo_bundle, tables["mixed"], capsys, "--json"))
    lines = miss_lines(report, shown=2)
    assert lines[:1] == [f"wrong at top-1 ({len(report['wrong'])} of {len(QUERIES)}):"]
    assert lines[3] == f"  … and {len(report['wrong']) - 2} more (see --json)"
    assert all(len(line) < 400 for line in lines)  # paragraph-long titles are shortened


def test_queries_of_no_catalogue_product_at_all_are_a_one_line_error(
        demo_bundle: Path, tables: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "--bundle", str(demo_bundle), "--queries", str(tables["unknown"])]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (f"shadematch eval: none of the 1 queries shows a product of the bundle's catalogue (the first's "
                   f"group is {UNKNOWN!r}): their group column must name the catalogue's groups")
