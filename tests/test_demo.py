"""`shadematch demo` builds the shipped catalogue and queries it without ../shared."""
from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("sklearn")


def test_demo_builds_queries_and_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from export.demo import run_demo

    summary = run_demo(tmp_path / "demo", threads=2, progress=False)
    out = capsys.readouterr().out
    assert "built" in out and "[visual]" in out and "[text  ]" in out
    assert out.count("_query.jpg") == 12
    assert summary["queries"] == 12
    # Two-stage search must not do worse than the visual ranking on the demo (it is the method's point).
    assert summary["map7"] >= summary["map7_visual"]
    assert (tmp_path / "demo" / "manifest.json").is_file()
