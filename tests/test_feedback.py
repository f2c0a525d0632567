"""Shoppers' feedback at the kiosk (issue 26): every answer has a query_id; POST /api/feedback stores the photo
(downscaled, no EXIF) and the choice in SQLite only on a kiosk started with a feedback database; every bad input
gets a clear 4xx and stores nothing; 16 clients at once lose nothing; `shadematch feedback` reads it back."""
from __future__ import annotations

import io
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest
from PIL import Image

from runtime import Retriever
from runtime.cli import feedback_db_path, main
from runtime.errors import ShadematchError
from runtime.feedback.store import PHOTO_SIDE, Feedback, FeedbackStore, PendingQueries, PendingQuery
from runtime.kiosk import KioskServer
from runtime.kiosk.client import KioskClient

from .conftest import DEMO

QUERY = DEMO / "images" / "yoggi-vanilla-yoghurt_query.jpg"


def _photo_with_exif() -> bytes:
    """The demo query photo in the middle of a grey frame twice its size (so the product is a region of the
    photo), enlarged past PHOTO_SIDE and carrying EXIF a kiosk must not keep."""
    product = Image.open(QUERY).convert("RGB")
    image = Image.new("RGB", (product.width * 2, product.height * 2), (128, 128, 128))
    image.paste(product, (product.width // 2, product.height // 2))
    image = image.resize((image.width * 2, image.height * 2))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x9003] = "2026:12:07 10:00:00"  # DateTimeOriginal
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


@pytest.fixture(scope="module")
def feedback_kiosk(demo_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[KioskServer, Path]]:
    db = tmp_path_factory.mktemp("feedback") / "feedback.sqlite"
    feedback = Feedback(FeedbackStore(db, max_bytes=4 * 1024 * 1024))
    with KioskServer(Retriever.open(demo_bundle, ocr=False), port=0, workers=2, feedback=feedback) as server:
        yield server.start(), db


@pytest.fixture(scope="module")
def client(feedback_kiosk: tuple[KioskServer, Path]) -> KioskClient:
    return KioskClient(feedback_kiosk[0].url, timeout=60)


def _rows(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as connection:
        return connection.execute("SELECT query_id, product_id, product_group, best_id, photo FROM feedback").fetchall()


def _ask(client: KioskClient, data: bytes | None = None) -> dict:
    reply = client.query(data or QUERY.read_bytes())
    assert reply.status == 200
    return reply.json()


def test_a_confirmed_answer_stores_the_downscaled_photo_without_exif(client: KioskClient,
                                                                      feedback_kiosk: tuple[KioskServer, Path]) -> None:
    answer = _ask(client, _photo_with_exif())
    assert len(answer["query_id"]) == 32
    best = answer["matches"][0]["product"]
    reply = client.feedback(answer["query_id"], best["id"])
    assert reply.status == 201 and reply.json() == {"stored": True, "query_id": answer["query_id"], "product_id": best["id"]}
    rows = {row[0]: row for row in _rows(feedback_kiosk[1])}
    _, product, group, best_id, photo = rows[answer["query_id"]]
    assert (product, group, best_id) == (best["id"], best["group"], best["id"])
    crop = sqlite3.connect(feedback_kiosk[1]).execute("SELECT crop FROM feedback WHERE query_id = ?",
                                                      (answer["query_id"],)).fetchone()[0]
    kept = Image.open(io.BytesIO(photo))
    # the product region the saliency map marks, cut from the kept photo
    cut = Image.open(io.BytesIO(crop))
    assert cut.width <= kept.width and cut.height <= kept.height and cut.size != kept.size and min(cut.size) > 32
    # decoded no larger than the model needs (this kiosk reads no labels), never past PHOTO_SIDE
    assert max(kept.size) <= PHOTO_SIDE < max(Image.open(io.BytesIO(_photo_with_exif())).size) and kept.format == "JPEG"
    assert not kept.getexif() and "exif" not in kept.info


def test_not_here_and_another_product_from_the_list(client: KioskClient, feedback_kiosk: tuple[KioskServer, Path]) -> None:
    first, second = _ask(client), _ask(client)
    assert first["query_id"] != second["query_id"]
    other = first["matches"][3]["product"]
    assert client.feedback(first["query_id"], other["id"]).status == 201
    assert client.feedback(second["query_id"], None).status == 201
    rows = {row[0]: row for row in _rows(feedback_kiosk[1])}
    assert rows[first["query_id"]][1:3] == (other["id"], other["group"])
    assert rows[second["query_id"]][1:3] == (None, None)


@pytest.mark.parametrize("send, status, code", [
    (lambda c, q: c.feedback("0" * 32, None), 404, "unknown_query"),
    (lambda c, q: c.feedback(q, "no-such-product"), 422, "unknown_product"),
    (lambda c, q: c.feedback(None, None), 400, "bad_query_id"),
    (lambda c, q: c.feedback(q, 7), 400, "bad_product_id"),
    (lambda c, q: c.request("POST", "/api/feedback", json.dumps({"query_id": q}).encode(),
                            {"Content-Type": "application/json"}), 400, "bad_product_id"),
    (lambda c, q: c.request("POST", "/api/feedback", b"{not json", {"Content-Type": "application/json"}), 400,
     "malformed_json"),
    (lambda c, q: c.request("POST", "/api/feedback", b"[1, 2]", {"Content-Type": "application/json"}), 400,
     "malformed_json"),
    (lambda c, q: c.request("POST", "/api/feedback", b"\xff\xfe", {"Content-Type": "application/json"}), 400,
     "malformed_json"),
    (lambda c, q: c.request("POST", "/api/feedback", json.dumps({"query_id": q, "product_id": None}).encode(),
                            {"Content-Type": "text/plain"}), 415, "not_json"),
    (lambda c, q: c.request("POST", "/api/feedback", b"{" + b" " * 5000 + b"}", {"Content-Type": "application/json"}),
     413, "bad_length"),
])
def test_bad_feedback_gets_a_clear_4xx_and_stores_nothing(client: KioskClient, feedback_kiosk: tuple[KioskServer, Path],
                                                          send, status: int, code: str) -> None:
    query_id = _ask(client)["query_id"]
    before = len(_rows(feedback_kiosk[1]))
    reply = send(client, query_id)
    assert reply.status == status, reply.body
    error = reply.json()["error"]
    assert error["code"] == code and error["message"] and "\n" not in error["message"]
    assert len(_rows(feedback_kiosk[1])) == before


def test_a_repeated_confirmation_is_409_and_the_first_one_stays(client: KioskClient,
                                                                  feedback_kiosk: tuple[KioskServer, Path]) -> None:
    answer = _ask(client)
    product = answer["matches"][0]["product"]["id"]
    assert client.feedback(answer["query_id"], product).status == 201
    again = client.feedback(answer["query_id"], None)
    assert again.status == 409 and again.json()["error"]["code"] == "repeated"
    assert {row[0]: row[1] for row in _rows(feedback_kiosk[1])}[answer["query_id"]] == product


def test_sixteen_clients_at_once_lose_nothing(client: KioskClient, feedback_kiosk: tuple[KioskServer, Path]) -> None:
    answers = [_ask(client) for _ in range(16)]
    statuses: list[int] = []
    start = threading.Barrier(16)

    def confirm(answer: dict) -> None:
        start.wait()
        statuses.append(KioskClient(feedback_kiosk[0].url).feedback(answer["query_id"], answer["matches"][0]["product"]["id"]).status)

    threads = [threading.Thread(target=confirm, args=(answer,)) for answer in answers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [201] * 16
    stored = {row[0] for row in _rows(feedback_kiosk[1])}
    assert {answer["query_id"] for answer in answers} <= stored


def test_a_kiosk_without_a_feedback_db_keeps_nothing(demo_bundle: Path) -> None:
    with KioskServer(Retriever.open(demo_bundle, ocr=False), port=0, workers=1) as server:
        client = KioskClient(server.start().url, timeout=60)
        answer = _ask(client)
        assert len(answer["query_id"]) == 32  # every answer has one
        reply = client.feedback(answer["query_id"], None)
        assert reply.status == 404 and reply.json()["error"]["code"] == "feedback_off"


def _pending(query_id: str, photo: bytes = b"x" * 1000, created: float | None = None) -> PendingQuery:
    return PendingQuery(query_id, "bundle", photo, "a", 0.9, 0.8, time.time() if created is None else created)


def test_the_size_limit_refuses_new_photos_and_keeps_the_old(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "f.sqlite", max_bytes=2500)
    store.add(_pending("q1"), "a", "A")
    store.add(_pending("q2"), None, None)
    with pytest.raises(ShadematchError, match="full"):
        store.add(_pending("q3"), "a", "A")
    assert store.stats()["feedback"] == 2


def test_feedback_past_its_retention_is_dropped(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "f.sqlite", retention_days=1)
    store.add(_pending("old"), "a", "A")
    with sqlite3.connect(tmp_path / "f.sqlite") as db:
        db.execute("UPDATE feedback SET created = created - 2 * 86400 WHERE query_id = 'old'")
    store.add(_pending("new"), "a", "A")
    assert [row.query_id for row in store.rows()] == ["new"]


def test_answers_wait_for_feedback_a_bounded_while() -> None:
    pending = PendingQueries(capacity=3, seconds=60)
    for i in range(5):
        pending.add(_pending(f"q{i}"))
    assert len(pending) == 3 and pending.get("q0") is None and pending.get("q4") is not None
    pending.add(_pending("stale", created=time.time() - 120))
    assert pending.get("stale") is None


def test_feedback_command_stats_export_and_purge(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "f.sqlite"
    store = FeedbackStore(db)
    photo = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 10, 10)).save(photo, "JPEG")
    store.add(_pending("q1", photo.getvalue()), "a", "A")
    store.add(_pending("q2", photo.getvalue()), None, None)
    assert main(["feedback", "--db", str(db), "stats", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert (stats["feedback"], stats["confirmed"], stats["not_here"], stats["products"]) == (2, 1, 1, 1)
    out = tmp_path / "export"
    assert main(["feedback", "--db", str(db), "export", "--out", str(out)]) == 0
    lines = [json.loads(line) for line in (out / "feedback.jsonl").read_text().splitlines()]
    assert [line["product_id"] for line in lines] == ["a", None] and lines[0]["crop"] is None
    assert Image.open(out / lines[0]["photo"]).size == (64, 48)
    capsys.readouterr()
    assert main(["feedback", "--db", str(db), "export", "--out", str(out)]) == 1
    assert "already exists" in capsys.readouterr().err
    assert main(["feedback", "--db", str(db), "purge", "--older-than", "1"]) == 0
    assert store.stats()["feedback"] == 2
    assert main(["feedback", "--db", str(db), "purge"]) == 0
    assert store.stats()["feedback"] == 0


def test_feedback_command_on_a_missing_or_foreign_file_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["feedback", "--db", str(tmp_path / "none.sqlite"), "stats"]) == 1
    assert "no feedback database" in capsys.readouterr().err
    foreign = tmp_path / "foreign.sqlite"
    foreign.write_bytes(b"this is not sqlite at all" * 100)
    assert main(["feedback", "--db", str(foreign), "stats"]) == 1
    err = capsys.readouterr().err
    assert "not a feedback database" in err and err.count("\n") == 1


def test_the_feedback_db_lives_beside_the_bundle_never_inside(tmp_path: Path) -> None:
    bundle = tmp_path / "store" / "current"
    bundle.mkdir(parents=True)
    assert feedback_db_path(bundle, Path("BUNDLE.data/feedback.sqlite")) == tmp_path / "store" / "current.data" / "feedback.sqlite"
    with pytest.raises(ShadematchError, match="must not be inside the bundle"):
        feedback_db_path(bundle, bundle / "feedback.sqlite")
