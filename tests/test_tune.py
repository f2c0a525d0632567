"""`shadematch tune`: settings scored on labelled photos, the best written into a new bundle, the old one intact."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("sklearn")
from export.bundle.tune import tune  # noqa: E402
from runtime.bundle import open_bundle, sha256_file  # noqa: E402
from runtime.cli import main  # noqa: E402
from runtime.tools.evaluate import evaluate, read_queries  # noqa: E402
from runtime.retriever import Retriever  # noqa: E402

from .conftest import DEMO  # noqa: E402


def _hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): sha256_file(p) for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_tune_writes_a_valid_bundle_and_leaves_the_old_one_intact(bundle_copy: Path, tmp_path: Path) -> None:
    before = _hashes(bundle_copy)
    report = tune(bundle_copy, DEMO / "queries.csv", tmp_path / "tuned", shrinkages=(0.1, 0.9), ks=(0, 1, 3),
                  votes=(0, 10))
    assert _hashes(bundle_copy) == before
    # 3 shrinkages (0.1, 0.9 and the bundle's own) x (k=0 once + k=1, 3 with vote 0 and 10), at the bundle's label
    # weight; then the 5 other label weights at the best of those
    assert len(report.table) == 3 * 5 + 5 and report.queries == 12
    assert {s.label_weight for s in report.table} == {0.0, 0.25, 0.5, 1.0, 2.0, 4.0}
    assert report.chosen.map7 >= report.current.map7
    assert report.chosen.map7 == max(s.map7 for s in report.table)
    tuned = open_bundle(tmp_path / "tuned")  # every checksum verified
    manifest = tuned.manifest
    assert (manifest["search"]["k"], manifest["search"]["vote"]) == (report.chosen.k, report.chosen.vote)
    assert manifest["descriptor"]["projection"]["shrinkage"] == report.chosen.shrinkage
    assert manifest["labels"]["weight"] == report.chosen.label_weight
    assert manifest["tuned"]["queries"] == 12 and manifest["tuned"]["chosen"]["map7"] == report.chosen.map7
    # the match confidence is fitted again, now with the store's labelled photos
    assert manifest["confidence"]["fitted"] == "tune" and manifest["confidence"]["labelled_photos"] == 12
    assert tuned.confidence is not None and tuned.confidence.dim == tuned.meta.dim
    # what tune measured is what eval then measures on the written bundle
    with Retriever.open(tmp_path / "tuned") as retriever:
        measured = evaluate(retriever, read_queries(DEMO / "queries.csv"))
    assert measured["map7"] == pytest.approx(report.chosen.map7, abs=1e-6)
    assert measured["top1"] == pytest.approx(report.chosen.top1, abs=1e-6)


@pytest.mark.slow
def test_tune_command_prints_its_table_and_guards_the_bundle(bundle_copy: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["tune", "--bundle", str(bundle_copy), "--queries", str(DEMO / "queries.csv")]
    assert main([*argv, "--out", str(bundle_copy)]) == 1
    assert "add --force" in capsys.readouterr().err
    assert main([*argv, "--out", str(tmp_path / "t"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    # the bundle's shrinkage 0.3 is among the six; then 5 label weights besides the bundle's
    assert report["queries"] == 12 and len(report["table"]) == 6 * (1 + 6 * 4) + 5
    assert main([*argv, "--out", str(tmp_path / "t")]) == 1  # exists, not forced
    assert "already exists" in capsys.readouterr().err
    assert main([*argv, "--out", str(bundle_copy), "--force"]) == 0  # in place, through a temporary sibling
    out = capsys.readouterr().out
    assert "<- chosen" in out and "current:" in out and "chosen:" in out
    assert open_bundle(bundle_copy).manifest["tuned"]["queries"] == 12
