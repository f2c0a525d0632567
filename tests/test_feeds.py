"""Product feeds (export.feeds): Merchant Center TSV/CSV/XML parsing, and the image fetch through the revalidating
cache against a loopback server with a broken, a slow and a non-image URL."""
from __future__ import annotations

import io
from pathlib import Path

import pytest

pytest.importorskip("requests")
from PIL import Image

from export.feeds.catalog import load_feed
from export.feeds.fetch import ImageCache, fetch_images
from export.feeds.options import FetchOptions
from export.feeds.parse import read_feed
from runtime.errors import CatalogError
from tests.feed_server import BROKEN, NOT_IMAGE, SLOW, FeedServer

DEMO_IMAGES = Path(__file__).resolve().parents[1] / "export" / "demo" / "images"
#: Quick to give up: the slow path sleeps 3 s, past this timeout, on each of its two tries.
QUICK = FetchOptions(workers=4, timeout_s=0.5, retries=1, backoff_s=0.05)


def _jpeg(name: str) -> bytes:
    return (DEMO_IMAGES / name).read_bytes()


def test_tsv_feed_reads_merchant_center_attributes(tmp_path: Path) -> None:
    feed = tmp_path / "feed.tsv"
    feed.write_text(
        "ID\tg:title\tImage Link\tadditional image link\tbrand\tdescription\tgtin\tprice\n"
        "P1\tVanilla soyghurt\thttp://x/a.jpg\thttp://x/b.jpg, http://x/c.jpg\tAlpro\tPlant-based\t4006381333931\t1.99 EUR\n"
        "P2\tBlueberry soyghurt\thttp://x/d.jpg\t\t\t\t4006381333932\t2.10 EUR\n"
        "P1\tAgain\thttp://x/e.jpg\t\t\t\t\t\n"
        "P3\t\thttp://x/f.jpg\t\t\t\t\t\n", encoding="utf-8")
    products, problems = read_feed(feed)
    assert [p.id for p in products] == ["P1"]
    first = products[0]
    assert first.images == ("http://x/a.jpg", "http://x/b.jpg", "http://x/c.jpg")
    assert first.attributes == {"brand": "Alpro", "description": "Plant-based", "gtin": "4006381333931",
                                "price": "1.99 EUR"}
    assert first.text() == "Vanilla soyghurt. Alpro. Plant-based"
    assert [str(p) for p in problems] == [
        "line 3: gtin '4006381333932' has check digit 2, expected 1",
        "line 4: duplicate id 'P1' (first at 2)",
        "line 5: empty title"]


def test_csv_feed_and_missing_attribute(tmp_path: Path) -> None:
    feed = tmp_path / "feed.csv"
    feed.write_text('id,title,image_link,link\nA,"Milk, 1 l",https://x/m.jpg,https://shop/m\n', encoding="utf-8")
    products, problems = read_feed(feed)
    assert (products[0].title, products[0].attributes, problems) == ("Milk, 1 l", {"link": "https://shop/m"}, [])
    feed.write_text("id,title,link\nA,Milk,https://shop/m\n", encoding="utf-8")
    with pytest.raises(CatalogError, match="missing attribute.*image_link"):
        read_feed(feed)


def test_rss_and_atom_feeds(tmp_path: Path) -> None:
    rss = tmp_path / "feed.xml"
    rss.write_text("""<?xml version="1.0"?>
<rss version="2.0" xmlns:g="http://base.google.com/ns/1.0"><channel><title>Shop</title>
<item><g:id>R1</g:id><title>Plain title</title><g:title>Oat drink</g:title><link>https://shop/r1</link>
<g:image_link>https://x/1.jpg</g:image_link><g:additional_image_link>https://x/2.jpg</g:additional_image_link>
<g:additional_image_link>https://x/3.jpg</g:additional_image_link><g:gtin>96385074</g:gtin>
<g:shipping><g:country>SE</g:country></g:shipping></item>
<item><g:id>R2</g:id><g:title>No image</g:title></item>
</channel></rss>""", encoding="utf-8")
    products, problems = read_feed(rss)
    assert (products[0].id, products[0].title, products[0].images) == (
        "R1", "Oat drink", ("https://x/1.jpg", "https://x/2.jpg", "https://x/3.jpg"))
    assert products[0].attributes == {"link": "https://shop/r1", "gtin": "96385074"}
    assert [str(p) for p in problems] == ["item 2: empty image_link"]
    atom = tmp_path / "feed.atom"
    atom.write_text("""<feed xmlns="http://www.w3.org/2005/Atom" xmlns:g="http://base.google.com/ns/1.0">
<entry><g:id>A1</g:id><title>Rye bread</title><summary>Dark and dense</summary><link href="https://shop/a1"/>
<g:image_link>https://x/a.jpg</g:image_link></entry></feed>""", encoding="utf-8")
    products, _ = read_feed(atom)
    assert products[0].attributes == {"description": "Dark and dense", "link": "https://shop/a1"}
    (tmp_path / "other.xml").write_text("<html><body/></html>", encoding="utf-8")
    with pytest.raises(CatalogError, match="not a product feed"):
        read_feed(tmp_path / "other.xml")


def test_fetch_reports_each_bad_url_and_revalidates_from_the_cache(tmp_path: Path) -> None:
    files = {f"/{name}": _jpeg(name) for name in ("alpro-vanilla-soyghurt_iconic.jpg", "oatly-oat-milk_iconic.jpg")}
    cache = ImageCache(tmp_path / "cache")
    with FeedServer(files) as server:
        urls = [server.url(path) for path in files] + [server.url(p) for p in (BROKEN, SLOW, NOT_IMAGE)]
        first = fetch_images(urls + ["ftp://x/y.jpg"], cache, QUICK, progress=False)
        assert (first.downloaded, first.unchanged, first.stale) == (2, 0, 0)
        assert first.failed == {server.url(BROKEN): "HTTP 404 Not Found", server.url(SLOW): "timed out (0.5 s, 2 tries)",
                                server.url(NOT_IMAGE): "not an image (Content-Type text/html)",
                                "ftp://x/y.jpg": "not an http(s) URL"}
        for path in files:
            assert first.paths[server.url(path)].read_bytes() == files[path]
        second = fetch_images(urls[:2], cache, QUICK, progress=False)
        assert (second.downloaded, second.unchanged) == (0, 2)
        assert sum(server.sent.values()) == 2 and sum(server.unchanged.values()) == 2  # no image sent twice
        assert second.paths == {url: first.paths[url] for url in urls[:2]}
        changed = next(iter(files))
        server.files[changed] = _jpeg("arla-standard-milk_iconic.jpg")  # the shop replaced a picture
        third = fetch_images(urls[:2], cache, QUICK, progress=False)
        assert (third.downloaded, third.unchanged) == (1, 1)
        assert third.paths[server.url(changed)] != first.paths[server.url(changed)]
    stale = fetch_images(urls[:2], cache, QUICK, progress=False)  # the server has gone: the cache answers
    assert (stale.stale, stale.failed) == (2, {})


def test_fetch_refuses_an_oversized_or_undecodable_image(tmp_path: Path) -> None:
    big = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(big, "PNG")
    files = {"/big.png": big.getvalue(), "/cut.jpg": _jpeg("oatly-oat-milk_iconic.jpg")[:40]}
    with FeedServer(files) as server:
        report = fetch_images([server.url(p) for p in files], ImageCache(tmp_path),
                              FetchOptions(max_bytes=len(big.getvalue()) - 1), progress=False)
    assert report.failed[server.url("/big.png")].endswith(f"bytes, over the {len(big.getvalue()) - 1}-byte limit")
    assert report.failed[server.url("/cut.jpg")].startswith("does not decode as an image")


def test_feed_rows_one_per_image_grouped_by_product(tmp_path: Path) -> None:
    files = {"/a.jpg": _jpeg("oatly-oat-milk_iconic.jpg"), "/b.jpg": _jpeg("oatly-oat-milk_train.jpg")}
    with FeedServer(files) as server:
        feed = tmp_path / "feed.tsv"
        feed.write_text("id\ttitle\tbrand\timage_link\tadditional_image_link\n"
                        f"OAT\tOat milk\tOatly\t{server.url('/a.jpg')}\t{server.url('/b.jpg')},{server.url(BROKEN)}\n",
                        encoding="utf-8")
        loaded = load_feed(feed, tmp_path / "cache", QUICK, progress=False)
    assert [(r.id, r.group, r.title, r.text, r.fields["image_link"]) for r in loaded.rows] == [
        ("OAT", "OAT", "Oat milk", "Oat milk. Oatly", server.url("/a.jpg")),
        ("OAT#2", "OAT", "Oat milk", "Oat milk. Oatly", server.url("/b.jpg"))]
    assert [str(p) for p in loaded.problems] == [f"line 2: additional image 2 {server.url(BROKEN)}: HTTP 404 Not Found"]
    assert "2 downloaded, 0 unchanged" in loaded.note and "1 failed" in loaded.note


def test_a_feed_fetched_from_its_url(tmp_path: Path) -> None:
    files = {"/a.jpg": _jpeg("oatly-oat-milk_iconic.jpg")}
    with FeedServer(files) as server:
        server.files["/feed.tsv"] = f"id\ttitle\timage_link\nOAT\tOat milk\t{server.url('/a.jpg')}\n".encode()
        loaded = load_feed(server.url("/feed.tsv"), tmp_path / "cache", QUICK, progress=False)
        assert [(row.id, row.where, row.line) for row in loaded.rows] == [("OAT", "line", 2)]
        assert loaded.source == server.url("/feed.tsv")
        with pytest.raises(CatalogError, match=f"^{server.url(BROKEN)}: HTTP 404 Not Found$"):
            load_feed(server.url(BROKEN), tmp_path / "cache", QUICK, progress=False)
