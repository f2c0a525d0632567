"""One result shape (runtime.results) for `query --json`, the kiosk's API and the Python API, held to the JSON Schema
integrators get (runtime/schema/result.schema.json)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from runtime import Retriever
from runtime.cli import main
from runtime.kiosk import KioskServer
from runtime.kiosk.client import KioskClient
from runtime.results import SCHEMA_VERSION, result_schema

jsonschema = pytest.importorskip("jsonschema", reason="needs jsonschema (pip install -e '.[dev]')")


def _validate(document: dict) -> None:
    jsonschema.Draft202012Validator.check_schema(result_schema())
    jsonschema.Draft202012Validator(result_schema()).validate(document)


def test_query_json_follows_the_schema(demo_bundle: Path, demo_queries: list[Path], tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes.txt").write_text("not a photo")
    photos = [str(demo_queries[0]), str(tmp_path / "notes.txt"), str(demo_queries[1])]
    assert main(["query", "--bundle", str(demo_bundle), *photos, "--json"]) == 1  # one photo unusable
    document = json.loads(capsys.readouterr().out)
    _validate(document)
    assert document["schema_version"] == SCHEMA_VERSION and [r["image"] for r in document["results"]] == photos
    good, bad, other = document["results"]
    assert bad["error"]["code"] == "unsupported_image" and bad["matches"] == [] and bad["found"] is False
    assert good["error"] is None and other["error"] is None and len(good["matches"]) == 7
    assert [m["rank"] for m in good["matches"]] == list(range(1, 8))


def test_the_kiosk_and_the_python_api_give_the_same_shape(demo_bundle: Path, demo_queries: list[Path]) -> None:
    with Retriever.open(demo_bundle) as retriever:
        answer = retriever.answer(demo_queries[:1])[0]
        threshold = retriever.threshold
    with KioskServer(Retriever.open(demo_bundle), port=0, workers=1) as server:
        server.start()
        reply = KioskClient(server.url, timeout=60).query(demo_queries[0].read_bytes(), filename=demo_queries[0].name)
    served = reply.json()
    for result in (served, answer.to_dict()):
        _validate({"schema_version": SCHEMA_VERSION, "threshold": threshold, "results": [result]})
    assert served["image"] == demo_queries[0].name and all(m["image_url"].startswith("/api/catalog/") for m in served["matches"])
    python = answer.to_dict()
    assert [m["product"] for m in served["matches"]] == [m["product"] for m in python["matches"]]
    assert served["found"] == python["found"] and served["confidence"] == pytest.approx(python["confidence"], abs=1e-3)


def test_the_schema_refuses_what_integrators_must_not_get() -> None:
    result = {"image": "a.jpg", "found": True, "confidence": 0.9, "elapsed_ms": 1.0, "matches": [], "words": [],
              "error": None}
    _validate({"schema_version": 1, "threshold": 0.2, "results": [result]})
    for broken in ({**result, "score": 0.5}, {**result, "found": "yes"}, {k: v for k, v in result.items() if k != "error"}):
        with pytest.raises(jsonschema.ValidationError):
            _validate({"schema_version": 1, "threshold": 0.2, "results": [broken]})
