"""The kiosk server over real HTTP on an ephemeral loopback port, against the demo bundle: good queries
answer like the Python API, every kind of bad request gets its 4xx with a message, no URL reaches a file
outside the catalogue, and the server keeps serving after each."""
from __future__ import annotations

import http.client
import io
import subprocess
import sys
import threading
from pathlib import Path
from typing import Iterator

import pytest
from PIL import Image

from runtime import Retriever
from runtime.kiosk import KioskLimits, KioskServer
from runtime.kiosk.client import KioskClient, Reply

from .conftest import DEMO

QUERY = DEMO / "images" / "yoggi-vanilla-yoghurt_query.jpg"
UPLOAD_LIMIT = 2 * 1024 * 1024


def _label(photo: Path) -> str:
    """The product a demo query photo shows, from the shipped queries.csv."""
    for line in (DEMO / "queries.csv").read_text(encoding="utf-8").splitlines()[1:]:
        image, group = line.split(",")[:2]
        if Path(image).name == photo.name:
            return group
    raise AssertionError(f"{photo.name} is not in queries.csv")


@pytest.fixture(scope="module")
def kiosk(demo_bundle: Path) -> Iterator[KioskServer]:
    limits = KioskLimits(max_upload_bytes=UPLOAD_LIMIT)
    with KioskServer(Retriever.open(demo_bundle), port=0, workers=2, limits=limits) as server:
        yield server.start()


@pytest.fixture(scope="module")
def client(kiosk: KioskServer) -> KioskClient:
    return KioskClient(kiosk.url, timeout=60)


@pytest.fixture(scope="module")
def fifty_megapixel_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8700, 5760), (180, 40, 40)).save(buffer, "JPEG", quality=30)
    return buffer.getvalue()


def _still_serving(client: KioskClient) -> None:
    reply = client.health()
    assert reply.status == 200 and reply.json()["status"] == "ok"
    good = client.query(QUERY.read_bytes())
    assert good.status == 200 and len(good.json()["matches"]) == 7


def test_binds_loopback_by_default(kiosk: KioskServer) -> None:
    assert kiosk.url.startswith("http://127.0.0.1:")


def test_health(client: KioskClient) -> None:
    reply = client.health()
    assert reply.status == 200 and reply.headers["content-type"] == "application/json"
    health = reply.json()
    assert health["status"] == "ok" and health["bundle"]["items"] == 24
    assert health["workers"] == 2 and health["capacity"] == 6


def test_query_finds_the_product_like_the_python_api(client: KioskClient, demo_bundle: Path) -> None:
    reply = client.query(QUERY.read_bytes())
    assert reply.status == 200, reply.body
    matches = reply.json()["matches"]
    assert len(matches) == 7 and [m["rank"] for m in matches] == list(range(1, 8))
    assert matches[0]["product"]["group"] == _label(QUERY)
    with Retriever.open(demo_bundle) as retriever:
        expected = retriever.query(QUERY)
    assert [m["product"]["id"] for m in matches] == [m.id for m in expected]
    assert [m["stage"] for m in matches] == [m.stage for m in expected]
    assert [m["score"] for m in matches] == pytest.approx([m.score for m in expected], abs=1e-3)
    assert [m["confidence"] for m in matches] == pytest.approx([m.confidence for m in expected], abs=1e-3)


def test_the_words_read_come_back_and_are_marked_in_the_titles(client: KioskClient) -> None:
    photo = DEMO / "images" / "god-morgon-orange-red-grapefruit-juice_query.jpg"
    payload = client.query(photo.read_bytes(), filename=photo.name).json()
    assert "grapefruit" in [w["text"].lower() for w in payload["words"]]
    assert all(len(w["box"]) == 4 for w in payload["words"])
    best = payload["matches"][0]
    assert best["product"]["group"] == "God-Morgon-Orange-Red-Grapefruit-Juice"
    assert "Grapefruit" in [best["product"]["title"][a:b] for a, b in best["title_read"]]


def test_a_kiosk_with_ocr_off_answers_from_the_image_alone(demo_bundle: Path) -> None:
    from runtime.kiosk.server import open_kiosk

    photo = DEMO / "images" / "god-morgon-orange-red-grapefruit-juice_query.jpg"
    with open_kiosk(demo_bundle, port=0, workers=1, ocr=False) as server:
        server.start()
        payload = KioskClient(server.url, timeout=60).query(photo.read_bytes(), filename=photo.name).json()
    assert payload["words"] == [] and all(m["title_read"] == [] for m in payload["matches"])
    with Retriever.open(demo_bundle, ocr=False) as retriever:
        assert [m["product"]["id"] for m in payload["matches"]] == [m.id for m in retriever.query(photo)]


def test_every_demo_query_answers_seven(client: KioskClient, demo_queries: list[Path]) -> None:
    for photo in demo_queries:
        reply = client.query(photo.read_bytes(), filename=photo.name)
        assert reply.status == 200 and len(reply.json()["matches"]) == 7, photo.name


def test_page_and_assets_are_served_from_the_bundle_machine(client: KioskClient) -> None:
    page = client.request("GET", "/")
    assert page.status == 200 and page.headers["content-type"].startswith("text/html")
    html = page.body.decode()
    assert 'id="results"' in html and 'type="file"' in html and "http" not in html.replace("http-equiv", "")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for name, kind in (("kiosk.js", "javascript"), ("kiosk.css", "text/css")):
        asset = client.request("GET", f"/static/{name}")
        assert asset.status == 200 and kind in asset.headers["content-type"]


def test_catalogue_image_is_a_jpeg_thumbnail(client: KioskClient) -> None:
    reply = client.query(QUERY.read_bytes())
    url = reply.json()["matches"][0]["image_url"]
    picture = client.request("GET", url)
    assert picture.status == 200 and picture.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(picture.body)) as image:
        assert image.format == "JPEG" and max(image.size) <= 480


def _multipart_without_boundary(client: KioskClient) -> Reply:
    return client.request("POST", "/api/query", b"--x\r\nnot really\r\n",
                          {"Content-Type": "multipart/form-data"})


def _truncated_jpeg() -> bytes:
    data = QUERY.read_bytes()
    return data[: len(data) // 3]


@pytest.mark.parametrize(
    ("send", "status", "code", "words"),
    [
        (lambda c, big: c.request("POST", "/api/query", b"", {"Content-Type": "multipart/form-data; boundary=x"}),
         400, "empty_request", "empty"),
        (lambda c, big: c.request("POST", "/api/query", QUERY.read_bytes(), {"Content-Type": "image/jpeg"}),
         415, "not_multipart", "multipart/form-data"),
        (lambda c, big: c.query(QUERY.read_bytes(), field_name="photo"), 400, "missing_image_field", "'image' (got: photo)"),
        (lambda c, big: c.query(b""), 400, "empty_image", "empty"),
        (lambda c, big: c.query(b"just some text, not a photo\n" * 20, filename="notes.txt", content_type="text/plain"),
         415, "unsupported_image", "not a recognised image"),
        (lambda c, big: c.query(_truncated_jpeg()), 422, "unreadable_image", "truncated"),
        (lambda c, big: c.query(big, filename="50mp.jpg"), 413, "image_too_large", "50.1 MP"),
        (lambda c, big: c.query(b"\xff" * (UPLOAD_LIMIT + 1024)), 413, "upload_too_large", "2 MB limit"),
        (lambda c, big: _multipart_without_boundary(c), 400, None, ""),
        (lambda c, big: c.request("GET", "/api/query"), 405, "method_not_allowed", "not allowed"),
    ],
    ids=["empty-body", "wrong-content-type", "wrong-field", "empty-file", "text-file", "truncated-jpeg",
         "50-megapixel", "over-upload-limit", "no-boundary", "wrong-method"],
)
def test_bad_requests_get_a_4xx_with_a_message(client: KioskClient, fifty_megapixel_jpeg: bytes, send, status: int,
                                               code: str | None, words: str) -> None:
    reply = send(client, fifty_megapixel_jpeg)
    assert reply.status == status, reply.body
    error = reply.json()["error"]
    assert error["status"] == status and error["message"]
    if code is not None:
        assert error["code"] == code
    assert words in error["message"]
    _still_serving(client)


def test_far_too_large_upload_is_cut_off_by_the_server(client: KioskClient) -> None:
    # Beyond the limit plus the multipart slack, Waitress answers from the headers alone and never reads
    # (or buffers) the body: the client is told 413 while it is still announcing 6 MB.
    connection = http.client.HTTPConnection(client.host, client.port, timeout=30)
    try:
        connection.putrequest("POST", "/api/query")
        connection.putheader("Content-Type", "multipart/form-data; boundary=x")
        connection.putheader("Content-Length", str(3 * UPLOAD_LIMIT))
        connection.endheaders(b"--x\r\n")
        response = connection.getresponse()
        assert response.status == 413 and b"max_body" in response.read()
    finally:
        connection.close()
    _still_serving(client)


@pytest.mark.parametrize("path", [
    "/api/catalog/../../../etc/passwd/image",
    "/api/catalog/..%2F..%2F..%2Fetc%2Fpasswd/image",
    "/api/catalog/%2e%2e/image",
    "/api/catalog/not-an-id/image",
    "/api/catalog//etc/passwd/image",
    "/static/../api.py",
    "/static/..%2Fapi.py",
    "/static/%2e%2e%2fserver.py",
    "/api/catalog/manifest.json/image",
])
def test_no_path_reaches_a_file_outside_the_catalogue(client: KioskClient, path: str) -> None:
    reply = client.request("GET", path)
    assert reply.status in (400, 404), (path, reply.status)
    assert b"root:" not in reply.body and b"import" not in reply.body
    assert client.health().status == 200


def test_full_pool_answers_503_with_retry_after(demo_bundle: Path) -> None:
    with KioskServer(Retriever.open(demo_bundle), port=0, workers=1, queue=0) as server:
        server.start()
        client = KioskClient(server.url)
        release = threading.Event()
        holder = threading.Thread(target=server.pool.run, args=(release.wait, 30))
        holder.start()
        try:
            while server.pool.in_flight < 1:
                release.wait(0.01)
            reply = client.query(QUERY.read_bytes())
            assert reply.status == 503 and reply.headers["retry-after"] == "1"
            assert "busy" in reply.json()["error"]["message"]
            assert client.health().status == 200  # health never waits for a query slot
        finally:
            release.set()
            holder.join()
        assert client.query(QUERY.read_bytes()).status == 200


def test_slow_answer_is_504(demo_bundle: Path) -> None:
    limits = KioskLimits(timeout_s=1e-4)
    with KioskServer(Retriever.open(demo_bundle), port=0, workers=1, limits=limits) as server:
        server.start()
        reply = KioskClient(server.url).query(QUERY.read_bytes())
        assert reply.status == 504 and "no answer within" in reply.json()["error"]["message"]


def test_cli_serves_and_prints_its_address(demo_bundle: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "runtime.cli", "kiosk", "--bundle", str(demo_bundle), "--port", "0", "--workers", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("shadematch kiosk: serving"), process.stderr.read() if process.poll() is not None else line
        url = line.split(" on ")[-1].strip()
        assert url.startswith("http://127.0.0.1:")
        assert KioskClient(url).health().json()["status"] == "ok"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.parametrize(("option", "accepted"), [(["--workers", "0"], ">= 1"), (["--timeout", "0"], "> 0"),
                                                  (["--max-upload-mb", "-1"], "> 0"), (["--queue", "-1"], ">= 0"),
                                                  (["--request-deadline", "0"], "> 0")])
def test_cli_refuses_impossible_limits(option: list[str], accepted: str, capsys: pytest.CaptureFixture[str]) -> None:
    from runtime.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["kiosk", "--bundle", "/nonexistent/bundle", *option])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"argument {option[0]}: expected" in error and accepted in error
