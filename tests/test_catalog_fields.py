"""A catalogue's own columns (price, SKU, shade, URL, ...) travel into the bundle and come back with each match:
from the Python API, the command's JSON and the kiosk; `update` carries them for the rows it adds; a bundle
written before fields existed still opens."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

import shadematch
from export.bundle.catalog import read_catalog_csv
from runtime.bundle import open_bundle
from runtime.bundle.catalog import CatalogRows, read_catalog
from runtime.cli import main
from runtime.errors import BundleError, CatalogError
from runtime.kiosk import KioskServer
from runtime.kiosk.client import KioskClient

from .conftest import DEMO

ROWS = list(csv.DictReader(open(DEMO / "catalog.csv", encoding="utf-8")))
EXTRA = ["price", "sku", "shade", "url"]
QUERY = DEMO / "images" / "yoggi-vanilla-yoghurt_query.jpg"


def _fields(row: dict[str, str]) -> dict[str, str]:
    """Made-up but distinct values per row, one with a comma and one non-ASCII, as real catalogues have."""
    return {"price": f"{len(row['id'])},95 kr", "sku": f"SKU-{row['id']}", "shade": f"nuance {row['group'][:6]} é",
            "url": f"https://shop.example/p/{row['id']}?ref=kiosk"}


def _csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["id", "image", "title", *EXTRA, "group"])
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, **_fields(row), "image": str((DEMO / row["image"]).resolve())})
    return path


@pytest.fixture(scope="module")
def fields_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("sklearn")
    from export.bundle.build import BuildOptions, build_bundle

    folder = tmp_path_factory.mktemp("fields")
    out = folder / "bundle"
    build_bundle(_csv(folder / "catalog.csv", ROWS), out, BuildOptions(progress=False, calibration=None, pictures=False))
    return out


def test_the_reader_keeps_other_columns_in_their_order(tmp_path: Path) -> None:
    rows, problems = read_catalog_csv(_csv(tmp_path / "c.csv", ROWS[:2]))
    assert not problems
    assert rows[0].fields == _fields(ROWS[0]) and list(rows[0].fields) == EXTRA
    assert rows[0].group == ROWS[0]["group"] and "group" not in rows[0].fields


@pytest.mark.parametrize("header, message", [
    ("id,image,title,price,price", "the column 'price' is named twice"),
    ("id,image,Title,title", "the column 'Title' looks like 'title'"),
])
def test_clashing_column_names_are_refused(tmp_path: Path, header: str, message: str) -> None:
    path = tmp_path / "c.csv"
    path.write_text(f"{header}\np1,{(DEMO / ROWS[0]['image']).resolve()},Milk,1,2\n", encoding="utf-8")
    with pytest.raises(CatalogError, match=f"line 1: {message}"):
        read_catalog_csv(path)


def test_an_unnamed_column_is_no_field(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text(f"id,image,title,sku,\np1,{(DEMO / ROWS[0]['image']).resolve()},Milk,S1,\n", encoding="utf-8")
    rows, problems = read_catalog_csv(path)
    assert not problems and rows[0].fields == {"sku": "S1"}


def test_matches_return_the_fields(fields_bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    by_id = {row["id"]: _fields(row) for row in ROWS}
    with shadematch.Retriever.open(fields_bundle) as retriever:
        matches = retriever.query(QUERY)
    assert matches[0].group == "Yoggi-Vanilla-Yoghurt"
    assert all(match.fields == by_id[match.id] for match in matches)
    assert list(matches[0].fields) == EXTRA and matches[0].to_dict()["fields"] == by_id[matches[0].id]
    assert main(["query", "--bundle", str(fields_bundle), str(QUERY), "--json"]) == 0
    first = json.loads(capsys.readouterr().out)["results"][0]["matches"][0]
    assert first["product"]["fields"] == by_id[first["product"]["id"]]


def test_the_kiosk_answers_with_the_fields(fields_bundle: Path) -> None:
    with KioskServer(shadematch.Retriever.open(fields_bundle), port=0, workers=1) as server:
        server.start()
        reply = KioskClient(server.url, timeout=60).query(QUERY.read_bytes())
    assert reply.status == 200
    for match in reply.json()["matches"]:
        product = match["product"]
        assert product["fields"] == _fields(next(row for row in ROWS if row["id"] == product["id"]))


def test_a_catalogue_without_other_columns_writes_rows_as_before(demo_bundle: Path) -> None:
    first = json.loads((demo_bundle / "catalog.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert set(first) == {"id", "title", "image", "group"}
    with shadematch.Retriever.open(demo_bundle) as retriever:
        assert retriever.query(QUERY)[0].fields == {}


def test_malformed_fields_are_a_bundle_error(tmp_path: Path) -> None:
    path = tmp_path / "catalog.jsonl"
    good = '{"id": "a", "title": "t", "image": "i", "group": "g", "fields": {"sku": "1"}}\n'
    path.write_text(good + '{"id": "b", "title": "t", "image": "i", "group": "g", "fields": ["sku"]}\n' + good,
                    encoding="utf-8")
    rows = CatalogRows(path)  # parsed row by row: the bad one is found when asked for
    assert rows[0].fields == {"sku": "1"}
    for read in (lambda: rows[1], lambda: read_catalog(path)):
        with pytest.raises(BundleError, match=r"line 2: malformed catalogue row \(fields is a list, not an object\)"):
            read()


def test_update_carries_the_fields_of_added_and_replaced_rows(fields_bundle: Path, tmp_path: Path) -> None:
    from export.bundle.update import UpdateOptions, update_bundle

    part = tmp_path / "part"
    shutil.copytree(fields_bundle, part)
    added = {**ROWS[0], "id": "new-Arla-Standard-Milk"}
    replaced = {**ROWS[1], "title": "Arla Standard Milk, 1.5 l"}
    update_bundle(part, tmp_path / "out", add=_csv(tmp_path / "add.csv", [added]),
                  replace=_csv(tmp_path / "replace.csv", [replaced]), options=UpdateOptions(progress=False))
    catalog = {item.id: item for item in open_bundle(tmp_path / "out").catalog}
    assert catalog[added["id"]].fields == _fields(added)
    assert catalog[replaced["id"]].fields == _fields(replaced) and catalog[ROWS[2]["id"]].fields == _fields(ROWS[2])


def test_a_titles_csv_keeps_its_other_columns_too(tmp_path: Path) -> None:
    """`build-vectors` and `update --add-vectors` read titles CSVs: their other columns are fields as well."""
    pytest.importorskip("sklearn")
    from export.bundle.build import read_titles

    path = tmp_path / "titles.csv"
    path.write_text("id,title,sku,group,url\na,Milk,S1,g,https://x/a\nb,Juice,,g,\n", encoding="utf-8")
    assert [item.fields for item in read_titles(path)] == [{"sku": "S1", "url": "https://x/a"}, {"sku": "", "url": ""}]
    path.write_text("id,title,ID\na,Milk,1\n", encoding="utf-8")
    with pytest.raises(CatalogError, match="the column 'ID' looks like 'id'"):
        read_titles(path)
