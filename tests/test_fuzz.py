"""Seeded fuzzing of the parsers a kiosk and a build meet (issue 13): catalogue and query CSVs, multipart bodies
and image headers. Bounded in count (a few seconds each); whatever the input, only ShadematchError subclasses
(or a 4xx JSON answer) may come out: no traceback, no builtin exception, no 500. (Manifests: test_manifest.py.)"""
from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Iterator

import pytest
from PIL import Image
from werkzeug.test import Client

from export.bundle.catalog import read_catalog_csv, settle_problems
from runtime import Retriever
from runtime.errors import ImageError, ShadematchError
from runtime.tools.evaluate import read_queries
from runtime.describe.image import load_image
from runtime.kiosk.api import KioskApp
from runtime.kiosk.live import LiveBundle
from runtime.kiosk.pool import QueryPool

from .conftest import DEMO

pytestmark = pytest.mark.slow

ROUNDS = 200
_NOISE = [b"\x00", b"\xff", b"\xe9", b'"', b",", b"\r", b"\n", b"\r\n", b"--", b";", b"=", b"\\", b"../", b"%2F",
          b"\xc3", b"\xef\xbb\xbf", b" " * 3, b"A" * 300]


def _mutate(data: bytes, rng: random.Random, edits: int = 3) -> bytes:
    """A few random byte edits: insert noise, delete a span, flip a byte, or cut the data short."""
    out = bytearray(data)
    for _ in range(rng.randint(1, edits)):
        at = rng.randrange(len(out) + 1)
        kind = rng.random()
        if kind < 0.35:
            out[at:at] = rng.choice(_NOISE)
        elif kind < 0.6 and out:
            del out[at:at + rng.randint(1, 40)]
        elif kind < 0.9 and at < len(out):
            out[at] = rng.randrange(256)
        else:
            del out[at:]
    return bytes(out)


def test_fuzzed_catalogue_and_query_csvs_give_catalogue_errors(tmp_path: Path) -> None:
    catalogue = (DEMO / "catalog.csv").read_bytes().replace(b"images/", str(DEMO / "images").encode() + b"/")
    queries = (DEMO / "queries.csv").read_bytes().replace(b"images/", str(DEMO / "images").encode() + b"/")
    rng = random.Random(6)
    outcomes = {"rows": 0, "error": 0}
    for round_ in range(ROUNDS):
        path = tmp_path / f"c{round_}.csv"
        path.write_bytes(_mutate(catalogue, rng))
        try:
            rows, problems = read_catalog_csv(path)
            settle_problems(path, problems, skip_bad=True)
            outcomes["rows"] += 1
        except ShadematchError:
            outcomes["error"] += 1
        path.write_bytes(_mutate(queries, rng))
        try:
            read_queries(path)
        except ShadematchError:
            pass
    assert outcomes["rows"] > 50  # most mutations only spoil single rows, which are reported and skipped


@pytest.fixture(scope="module")
def app(demo_bundle: Path) -> Iterator[Client]:
    with Retriever.open(demo_bundle, threads=1) as retriever:
        pool = QueryPool(1, 2)
        try:
            yield Client(KioskApp(LiveBundle(retriever), pool))
        finally:
            pool.close()


def _photo_body(boundary: bytes) -> bytes:
    photo = (DEMO / "images" / "oatly-oat-milk_query.jpg").read_bytes()
    return (b"--" + boundary + b'\r\nContent-Disposition: form-data; name="note"\r\n\r\nhello\r\n'
            b"--" + boundary + b'\r\nContent-Disposition: form-data; name="image"; filename="p.jpg"\r\n'
            b"Content-Type: image/jpeg\r\n\r\n" + photo + b"\r\n--" + boundary + b"--\r\n")


def test_fuzzed_multipart_bodies_get_answers_never_500(app: Client) -> None:
    rng = random.Random(7)
    body = _photo_body(b"B0undary")
    statuses = set()
    for _ in range(ROUNDS // 2):
        # spoil the body's first kilobyte (headers, boundaries) or anywhere, and sometimes the content type
        head = _mutate(body[:1024], rng) + body[1024:] if rng.random() < 0.7 else _mutate(body, rng)
        content_type = "multipart/form-data; boundary=B0undary"
        if rng.random() < 0.2:
            # (CR and LF cannot travel in an HTTP header at all)
            content_type = _mutate(content_type.encode(), rng).decode("latin-1").replace("\r", "").replace("\n", "")
        reply = app.post("/api/query", data=head, headers={"Content-Type": content_type})
        statuses.add(reply.status_code)
        assert reply.status_code < 500 or reply.status_code in (503, 504), reply.get_data()
        assert reply.is_json and ("matches" in reply.json or reply.json["error"]["message"])
    assert 200 in statuses and any(400 <= s < 500 for s in statuses)


def _images() -> Iterator[tuple[str, bytes]]:
    image = Image.open(DEMO / "images" / "oatly-oat-milk_query.jpg").convert("RGB").resize((64, 64))
    for fmt in ("JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF"):
        buffer = io.BytesIO()
        image.save(buffer, fmt)
        yield fmt, buffer.getvalue()


@pytest.mark.parametrize(("fmt", "data"), list(_images()), ids=lambda value: value if isinstance(value, str) else "")
def test_fuzzed_image_headers_give_image_errors(fmt: str, data: bytes) -> None:
    rng = random.Random(fmt)
    for _ in range(ROUNDS):
        spoiled = _mutate(data[:256], rng) + data[256:]  # the header and the first segments
        try:
            load_image(spoiled, min_size=32)
        except ImageError:
            pass
