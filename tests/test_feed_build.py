"""`shadematch build --feed` end to end: the demo catalogue served as a Merchant Center feed from a loopback
server, with one broken, one slow and one non-image URL; `--skip-bad` lists exactly those, the bundle answers as
the same catalogue built from a CSV does, and a second build revalidates every image from the cache."""
from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path

import pytest

pytest.importorskip("requests")
pytest.importorskip("sklearn")

from runtime.bundle.catalog import read_catalog
from runtime.cli import main
from runtime.retriever import Retriever
from tests.feed_server import BROKEN, NOT_IMAGE, SLOW, FeedServer

from .conftest import DEMO

pytestmark = pytest.mark.slow
ROWS = list(csv.DictReader(open(DEMO / "catalog.csv", encoding="utf-8")))
QUERIES = [DEMO / row["image"] for row in csv.DictReader(open(DEMO / "queries.csv", encoding="utf-8"))]
#: Quicker than the defaults, so the slow URL (3 s of silence, two tries) costs the test seconds, not minutes.
FETCH = ["--fetch-timeout", "0.5", "--fetch-retries", "1", "--quiet", "--no-pictures", "--not-found-photos", "0",
         "--query-views", "off"]


def _products() -> dict[str, dict[str, str]]:
    """The demo's products: group -> title and its iconic and in-store catalogue images."""
    products: dict[str, dict[str, str]] = defaultdict(dict)
    for row in ROWS:
        kind = row["id"].split("-", 1)[0]  # iconic-... or train-...
        products[row["group"]].update({"title": row["title"], kind: row["image"]})
    return products


def _write_feed(path: Path, server: FeedServer) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter="\t")
        writer.writerow(["id", "title", "image_link", "additional_image_link", "price"])
        for group, product in _products().items():
            writer.writerow([group, product["title"], server.url("/" + product["iconic"]),
                             server.url("/" + product["train"]), "1.99 EUR"])
        for bad in (BROKEN, SLOW, NOT_IMAGE):
            writer.writerow([f"bad{bad.split('.')[0].replace('/', '-')}", "A product whose image cannot be had",
                             server.url(bad), "", "9.99 EUR"])


def _write_csv(path: Path, server: FeedServer) -> None:
    """The same catalogue as the feed's good rows: ids, groups, titles, images and fields alike."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "image", "title", "group", "price", "image_link"])
        for group, product in _products().items():
            for row_id, kind in ((group, "iconic"), (f"{group}#2", "train")):
                writer.writerow([row_id, str((DEMO / product[kind]).resolve()), product["title"], group, "1.99 EUR",
                                 server.url("/" + product[kind])])


def _update_from_a_changed_feed(tmp_path: Path, server: FeedServer, capsys: pytest.CaptureFixture[str]) -> None:
    """The shop dropped a product, re-shot one picture, changed a price and listed a new product: `update --feed`
    adds, replaces and removes exactly those rows, and the result holds what a fresh build of the new feed holds."""
    products = list(_products().items())
    (gone, _), (reshot, reshot_product), (repriced, _) = products[:3]
    server.files["/" + reshot_product["iconic"]] = (DEMO / products[5][1]["train"]).read_bytes()
    server.files["/new.jpg"] = (DEMO / products[6][1]["iconic"]).read_bytes()
    rows = list(csv.reader(open(tmp_path / "feed.tsv", encoding="utf-8"), delimiter="\t"))
    rows = [row for row in rows if row[0] != gone]
    rows = [row[:4] + ["2.49 EUR"] if row[0] == repriced else row for row in rows]
    rows.append(["NEW", "A new product", server.url("/new.jpg"), "", "3.00 EUR"])
    with open(tmp_path / "feed2.tsv", "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, delimiter="\t").writerows(rows)
    capsys.readouterr()
    assert main(["update", "--bundle", str(tmp_path / "fed"), "--feed", str(tmp_path / "feed2.tsv"), "--out",
                 str(tmp_path / "updated"), "--image-cache", str(tmp_path / "cache"), "--skip-bad", "--json",
                 "--fetch-timeout", "0.5", "--fetch-retries", "1", "--quiet"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["added"], report["removed"], report["replaced"], report["skipped"]) == (1, 2, 3, 3)
    assert main(["build", "--feed", str(tmp_path / "feed2.tsv"), "--out", str(tmp_path / "rebuilt"),
                 "--image-cache", str(tmp_path / "cache"), "--skip-bad", *FETCH]) == 0
    updated = {r.id: r for r in read_catalog(tmp_path / "updated" / "catalog.jsonl")}
    rebuilt = {r.id: r for r in read_catalog(tmp_path / "rebuilt" / "catalog.jsonl")}
    assert updated == rebuilt and gone not in updated and updated[repriced].fields["price"] == "2.49 EUR"


def _answers(bundle: Path) -> list[list[tuple[str, str, float]]]:
    with Retriever.open(bundle) as retriever:
        return [[(m.id, m.stage, round(m.score, 4)) for m in matches]
                for matches in retriever.query_batch(QUERIES)]


def test_build_from_a_feed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = {"/" + row["image"]: (DEMO / row["image"]).read_bytes() for row in ROWS}
    with FeedServer(files) as server:
        feed, cache = tmp_path / "feed.tsv", tmp_path / "cache"
        _write_feed(feed, server)
        _write_csv(tmp_path / "catalog.csv", server)
        assert main(["build", "--feed", str(feed), "--out", str(tmp_path / "refused"), "--image-cache", str(cache),
                     *FETCH]) == 1
        assert "3 bad row(s)" in capsys.readouterr().err and not (tmp_path / "refused").exists()
        assert sum(server.sent.values()) == len(ROWS)  # every good image fetched once, then kept in the cache

        assert main(["build", "--feed", str(feed), "--out", str(tmp_path / "fed"), "--image-cache", str(cache),
                     "--skip-bad", *FETCH]) == 0
        err = capsys.readouterr().err
        skipped = sorted(line for line in err.splitlines() if "skipping" in line)
        assert skipped == sorted([
            f"shadematch: skipping {feed} line 14: image_link {server.url(BROKEN)}: HTTP 404 Not Found",
            f"shadematch: skipping {feed} line 15: image_link {server.url(SLOW)}: timed out (0.5 s, 2 tries)",
            f"shadematch: skipping {feed} line 16: image_link {server.url(NOT_IMAGE)}: not an image "
            "(Content-Type text/html)"])
        assert f"{len(ROWS) + 3} image URL(s): 0 downloaded, {len(ROWS)} unchanged" in err
        assert sum(server.sent.values()) == len(ROWS)  # the second build downloaded nothing: all revalidated
        assert sum(server.unchanged.values()) == len(ROWS)

        assert main(["build", "--catalog", str(tmp_path / "catalog.csv"), "--out", str(tmp_path / "csv"), *FETCH]) == 0
        _update_from_a_changed_feed(tmp_path, server, capsys)
    fed_rows, csv_rows = list(read_catalog(tmp_path / "fed" / "catalog.jsonl")), list(read_catalog(tmp_path / "csv" / "catalog.jsonl"))
    assert [(r.id, r.group, r.title, r.fields) for r in fed_rows] == [(r.id, r.group, r.title, r.fields) for r in csv_rows]
    assert _answers(tmp_path / "fed") == _answers(tmp_path / "csv")
