"""Kiosk faults found by trying it as a careless client would (issue 13, fault 5): a file name that is not UTF-8,
too many form parts, catalogue ids holding "/", a client that drips its request, and SIGTERM."""
from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator
from urllib.parse import quote

import pytest

from runtime import Retriever
from runtime.kiosk import KioskLimits, KioskServer
from runtime.kiosk.client import KioskClient

from .conftest import DEMO

QUERY = DEMO / "images" / "yoggi-vanilla-yoghurt_query.jpg"


@pytest.fixture(scope="module")
def slashed_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four demo products whose catalogue ids hold '/' (as 'shelf/12/a' ids of a store system would)."""
    pytest.importorskip("sklearn")
    from export.bundle.build import BuildOptions, build_bundle

    lines = (DEMO / "catalog.csv").read_text(encoding="utf-8").splitlines()
    rows = [line.split(",", 1) for line in lines[1:9]]
    body = [f"shelf/{i}/{row_id},{rest.replace('images/', f'{DEMO}/images/', 1)}" for i, (row_id, rest) in enumerate(rows)]
    catalogue = tmp_path_factory.mktemp("slashed") / "catalog.csv"
    catalogue.write_text("\n".join([lines[0], *body]) + "\n", encoding="utf-8")
    out = catalogue.parent / "bundle"
    build_bundle(catalogue, out, BuildOptions(progress=False, calibration=None))
    return out


@pytest.fixture(scope="module")
def client(slashed_bundle: Path) -> Iterator[KioskClient]:
    limits = KioskLimits(max_upload_bytes=2 * 1024 * 1024)
    with KioskServer(Retriever.open(slashed_bundle), port=0, workers=2, limits=limits) as server:
        yield KioskClient(server.start().url, timeout=60)


def _multipart(parts: list[bytes], boundary: bytes = b"XyZ") -> tuple[bytes, dict[str, str]]:
    body = b"".join(b"--" + boundary + b"\r\n" + part + b"\r\n" for part in parts) + b"--" + boundary + b"--\r\n"
    return body, {"Content-Type": "multipart/form-data; boundary=" + boundary.decode()}


def _photo_part(filename: bytes) -> bytes:
    return (b'Content-Disposition: form-data; name="image"; filename="' + filename + b'"\r\n'
            b"Content-Type: image/jpeg\r\n\r\n" + QUERY.read_bytes())


def test_a_photo_whose_file_name_is_not_utf8_is_answered(client: KioskClient) -> None:
    body, headers = _multipart([_photo_part(b"Cr\xe8me br\xfbl\xe9e.jpg")])  # latin-1, as old clients send
    reply = client.request("POST", "/api/query", body, headers)
    assert reply.status == 200, reply.body
    assert len(reply.json()["matches"]) == 4  # the four products of this bundle


def test_too_many_form_parts_is_said_as_such(client: KioskClient) -> None:
    fields = [b'Content-Disposition: form-data; name="f%d"\r\n\r\nx' % i for i in range(20)]
    body, headers = _multipart([*fields, _photo_part(b"photo.jpg")])
    reply = client.request("POST", "/api/query", body, headers)
    assert reply.status == 413
    error = reply.json()["error"]
    assert error["code"] == "too_many_parts" and "more than 16 parts" in error["message"]
    assert "MB limit" not in error["message"]


def test_a_catalogue_id_holding_a_slash_gets_its_picture(client: KioskClient) -> None:
    matches = client.query(QUERY.read_bytes()).json()["matches"]
    assert all("/" in match["product"]["id"] for match in matches)
    for match in matches[:3]:
        assert match["image_url"] == f"/api/catalog/{quote(match['product']['id'], safe='')}/image"
        picture = client.request("GET", match["image_url"])
        assert picture.status == 200 and picture.headers["content-type"] == "image/jpeg"
    assert client.request("GET", "/api/catalog/shelf/0/iconic-Arla-Standard-Milk/image").status == 200
    assert client.request("GET", "/api/catalog/shelf/0/nothing/image").status == 404


def test_a_client_that_drips_its_request_is_cut_off(slashed_bundle: Path) -> None:
    with KioskServer(Retriever.open(slashed_bundle), port=0, workers=1, request_deadline_s=1.5) as server:
        server.start()
        host, port = server.url.removeprefix("http://").rsplit(":", 1)
        drip = socket.create_connection((host, int(port)), timeout=10)
        drip.sendall(b"POST /api/query HTTP/1.1\r\nHost: kiosk\r\n")
        started, closed = time.monotonic(), False
        try:
            while time.monotonic() - started < 6 and not closed:
                time.sleep(0.4)
                try:
                    drip.sendall(b"X")  # one byte at a time: never idle long enough for the inactivity timeout
                    drip.settimeout(0.05)
                    closed = drip.recv(1) == b""
                except socket.timeout:
                    pass
                except OSError:
                    closed = True
        finally:
            drip.close()
        assert closed and time.monotonic() - started < 4, "the dripping connection was kept"
        assert KioskClient(server.url).health().status == 200


def test_sigterm_finishes_the_query_in_flight_and_exits_cleanly(slashed_bundle: Path) -> None:
    process = subprocess.Popen([sys.executable, "-m", "runtime.cli", "kiosk", "--bundle", str(slashed_bundle),
                                "--port", "0", "--workers", "1"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = ""
        while "serving" not in line:  # log lines may come first
            line = process.stdout.readline()
            assert line, "the kiosk ended before serving"
        url = line.strip().rsplit(" on ", 1)[1]
        client = KioskClient(url, timeout=60)
        assert client.health().status == 200
        import threading

        answers = []
        asking = threading.Thread(target=lambda: answers.append(client.query(QUERY.read_bytes())))
        asking.start()
        time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        asking.join(timeout=30)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    assert "stopped by SIGTERM" in output
    assert answers and answers[0].status == 200
