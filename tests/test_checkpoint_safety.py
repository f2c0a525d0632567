"""Training checkpoints are read without running code (issue 13, fault 8): a handed-over file cannot execute anything."""
from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from export.train.checkpoint import CheckpointError, load_checkpoint  # noqa: E402
from runtime.cli import main  # noqa: E402


class Payload:
    """Pickles as a call of Path.touch: loading it with the full unpickler would create ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return Path.touch, (self.marker,)


@pytest.fixture
def hostile(tmp_path: Path) -> tuple[Path, Path]:
    marker = tmp_path / "code-ran"
    path = tmp_path / "checkpoint.pt"
    torch.save({"step": 1, "config": {}, "model": {}, "extra": Payload(marker)}, path)
    return path, marker


def test_a_checkpoint_holding_code_is_refused_and_the_code_never_runs(hostile: tuple[Path, Path]) -> None:
    path, marker = hostile
    with pytest.raises(CheckpointError, match="not a shadematch training checkpoint"):
        load_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize("command", [["export-model", "--manet"], ["text-export", "--out", "{out}", "--checkpoint"]])
def test_commands_that_read_checkpoints_refuse_it_in_one_line(command: list[str], hostile: tuple[Path, Path], tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    path, marker = hostile
    argv = [part.replace("{out}", str(tmp_path / "out")) for part in command] + [str(path)]
    if argv[0] == "export-model":
        argv += ["--out", str(tmp_path / "out")]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not a shadematch training checkpoint" in err
    assert not marker.exists()


def test_a_missing_or_foreign_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "absent.pt")
    (tmp_path / "noise.pt").write_bytes(b"not a zip at all")
    with pytest.raises(CheckpointError, match="not a shadematch training checkpoint"):
        load_checkpoint(tmp_path / "noise.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "plain.pt")
    with pytest.raises(CheckpointError, match="no config and model"):
        load_checkpoint(tmp_path / "plain.pt")
