"""GET /metrics (issue 27, metrics): the kiosk's Prometheus text, scraped with prometheus_client's own parser after
concurrent load; every count matches the requests sent."""
from __future__ import annotations

import threading
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from runtime import Retriever
from runtime.feedback.store import Feedback, FeedbackStore
from runtime.kiosk import KioskServer
from runtime.kiosk.client import KioskClient

from .conftest import DEMO


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_count_the_requests_sent_under_load(demo_bundle: Path, demo_queries: list[Path], tmp_path: Path) -> None:
    feedback = Feedback(FeedbackStore(tmp_path / "feedback.sqlite"))
    with KioskServer(Retriever.open(demo_bundle, ocr=False), port=0, workers=2, queue=16, feedback=feedback) as server:
        url = server.start().url
        before = KioskClient(url).request("GET", "/metrics")
        assert before.status == 200 and before.headers["content-type"].startswith("text/plain")
        assert _samples(before.body.decode())[("shadematch_queries_total", (("outcome", "found"),))] == 0
        photos = [path.read_bytes() for path in demo_queries[:6]]
        answers: list[dict] = []
        errors: list[int] = []
        lock = threading.Lock()

        def shopper(i: int) -> None:
            client = KioskClient(url, timeout=120)
            reply = client.query(photos[i % len(photos)])
            bad = client.query(b"not an image at all", filename="x.jpg")
            with lock:
                answers.append(reply.json())
                errors.append(bad.status)

        threads = [threading.Thread(target=shopper, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        client = KioskClient(url)
        assert client.feedback(answers[0]["query_id"], answers[0]["matches"][0]["product"]["id"]).status == 201
        assert client.feedback(answers[1]["query_id"], None).status == 201
        assert client.feedback("0" * 32, None).status == 404
        health = client.health().json()
        samples = _samples(client.request("GET", "/metrics").body.decode())
    found = sum(a["found"] for a in answers)
    assert errors == [415] * 8
    assert samples[("shadematch_queries_total", (("outcome", "found"),))] == found
    assert samples[("shadematch_queries_total", (("outcome", "not_found"),))] == 8 - found
    assert samples[("shadematch_queries_total", (("outcome", "error"),))] == 8
    assert samples[("shadematch_query_seconds_count", (("stage", "total"),))] == 16
    assert samples[("shadematch_query_seconds_count", (("stage", "answer"),))] == 8
    assert samples[("shadematch_query_seconds_count", (("stage", "decode"),))] == 8
    assert samples[("shadematch_feedback_total", (("outcome", "stored"),))] == 2
    assert samples[("shadematch_feedback_total", (("outcome", "unknown_query"),))] == 1
    bundle = health["bundle"]
    assert samples[("shadematch_bundle_info", (("id", bundle["id"]), ("items", str(bundle["items"])),
                                               ("name", bundle["name"])))] == 1
    assert samples[("shadematch_bundle_reloads", ())] == 0
    assert samples[("shadematch_queries_in_flight", ())] == 0
    assert samples[("shadematch_query_capacity", ())] == 18
