"""Where a bundle may be written (issue 13, faults 2 and 7): --force replaces only bundles, never the working
directory, and leftovers of a build killed in its write phase are cleaned up, those of running builds are not."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sklearn")
from export.bundle.build import BuildOptions, build_bundle  # noqa: E402
from runtime.bundle import open_bundle  # noqa: E402
from runtime.cli import main  # noqa: E402
from runtime.errors import BundleError  # noqa: E402

from .conftest import DEMO  # noqa: E402

OPTIONS = BuildOptions(progress=False, calibration=None, pictures=False, overwrite=True)


def test_force_never_replaces_a_folder_that_is_not_a_bundle(tmp_path: Path) -> None:
    folder = tmp_path / "my-photos"
    folder.mkdir()
    (folder / "holiday.jpg").write_bytes(b"precious")
    with pytest.raises(BundleError, match="is not a shadematch bundle: refusing to replace it"):
        build_bundle(DEMO / "catalog.csv", folder, OPTIONS)
    assert (folder / "holiday.jpg").read_bytes() == b"precious"
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(BundleError, match="not a shadematch bundle"):
        build_bundle(DEMO / "catalog.csv", tmp_path / "notes.txt", OPTIONS)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_out_dot_is_a_one_line_error_and_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert main(["build", "--catalog", str(DEMO / "catalog.csv"), "--out", ".", "--force", "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is the current directory" in err
    assert main(["build", "--catalog", str(DEMO / "catalog.csv"), "--out", "..", "--force", "--quiet"]) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"] and list(work.iterdir()) == []


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_leftovers_of_killed_builds_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    host = socket.gethostname()
    stale = tmp_path / f".bundle.tmp-{host}-{_dead_pid()}-abc123xy"
    stale_backup = tmp_path / f".bundle.old-{host}-{_dead_pid()}-def456xy"
    live = tmp_path / f".bundle.tmp-{host}-{os.getpid()}-live0000"
    elsewhere = tmp_path / f".bundle.tmp-another-host-{_dead_pid()}-far00000"
    for folder in (stale, stale_backup, live, elsewhere):
        folder.mkdir()
        (folder / "vectors.npy").write_bytes(b"half written")
    build_bundle(DEMO / "catalog.csv", tmp_path / "bundle", OPTIONS)
    open_bundle(tmp_path / "bundle")
    assert not stale.exists() and not stale_backup.exists()
    assert live.exists() and elsewhere.exists()  # a running build's work, another machine's: not ours to judge
