"""`kiosk --log-format json` (issue 27): every log line the kiosk writes is one JSON object."""
from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

from runtime.kiosk.client import KioskClient
from runtime.kiosk.logs import JsonFormatter


def test_a_record_with_a_traceback_is_one_json_line() -> None:
    try:
        raise ValueError("broken photo")
    except ValueError:
        record = logging.getLogger("shadematch.kiosk").makeRecord(
            "shadematch.kiosk", logging.ERROR, __file__, 1, "unexpected error on %s", ("POST /api/query",),
            sys.exc_info())
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "ERROR" and entry["logger"] == "shadematch.kiosk"
    assert entry["message"] == "unexpected error on POST /api/query" and "ValueError: broken photo" in entry["exception"]
    assert entry["time"].endswith("Z") and "T" in entry["time"]


def test_the_kiosk_logs_json_lines(demo_bundle: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "runtime.cli", "kiosk", "--bundle", str(demo_bundle), "--port", "0", "--workers", "1",
         "--log-format", "json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        assert line.startswith("shadematch kiosk: serving"), process.stderr.read() if process.poll() is not None else line
        assert KioskClient(line.split(" on ")[-1].strip()).health().status == 200
    finally:
        process.terminate()
        process.wait(timeout=10)
    lines = [json.loads(text) for text in process.stderr.read().splitlines() if text.strip()]
    assert lines and all({"time", "level", "logger", "message"} <= set(entry) for entry in lines)
    assert any(entry["logger"] == "shadematch" and "ONNX Runtime" in entry["message"] for entry in lines)
