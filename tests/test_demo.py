"""`shadematch demo` builds the shipped catalogue and queries it without ../shared."""
from __future__ import annotations

import shlex
from pathlib import Path

import pytest

pytest.importorskip("sklearn")


@pytest.mark.slow
def test_demo_builds_queries_and_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from export.demo.run import run_demo

    summary = run_demo(tmp_path / "demo", threads=2, progress=False)
    out = capsys.readouterr().out
    assert "built" in out and " visual  " in out and " text  " in out
    assert out.count("_query.jpg (shows ") == 12 and "sure: the calibrated probability" in out  # query's own output
    assert summary["queries"] == 12
    # Two-stage search must not do worse than the visual ranking on the demo (it is the method's point).
    assert summary["map7"] >= summary["map7_visual"]
    assert (tmp_path / "demo" / "manifest.json").is_file()
    # It ends by saying where its photos are and how to query the bundle and open the kiosk on it.
    photos_line, try_line, kiosk_line = out.rstrip("\n").splitlines()[-3:]
    assert photos_line.startswith("Demo photos: ")
    photos = Path(shlex.split(photos_line.removeprefix("Demo photos: "))[0])
    assert photos.is_dir() and len(list(photos.glob("*_query.jpg"))) == 12
    command = shlex.split(try_line.removeprefix("Try: "))
    assert command[:3] == ["shadematch", "query", "--bundle"]
    assert Path(command[3]) == tmp_path / "demo" and Path(command[4]).is_file()
    assert Path(command[4]).parent == photos
    assert kiosk_line.startswith("Open the kiosk: shadematch kiosk --bundle ")
    assert kiosk_line.endswith(", then http://127.0.0.1:8080")
    assert Path(shlex.split(kiosk_line.removeprefix("Open the kiosk: "))[3].rstrip(",")) == tmp_path / "demo"
