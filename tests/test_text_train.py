"""EAST training is seeded and resumable: an interrupted run ends where an uninterrupted one does."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("cv2")


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from export.synthetic.text_images import generate

    return generate(tmp_path_factory.mktemp("synth") / "data", count=6, seed=3, size=96)


def _weights(checkpoint: Path) -> dict:
    return torch.load(checkpoint, map_location="cpu", weights_only=True)["model"]


def test_resumed_run_matches_an_uninterrupted_one(samples: Path, tmp_path: Path) -> None:
    from export.text.train import TrainConfig, train

    torch.set_num_threads(1)
    config = TrainConfig(steps=4, batch_size=2, size=64, freeze_stages=3, checkpoint_every=2, log_every=1, seed=5)
    straight = train([samples], tmp_path / "straight", config)
    train([samples], tmp_path / "resumed", config, until=3)  # interrupted after step 3 ...
    resumed = train([samples], tmp_path / "resumed", config)  # ... and resumed
    a, b = _weights(straight), _weights(resumed)
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-4, atol=1e-5, msg=name)
    log = (tmp_path / "resumed" / "train_log.jsonl").read_text().splitlines()
    assert [int(line.split(",")[0].split(":")[1]) for line in log] == [1, 2, 3, 4]


def test_changed_configuration_is_refused_on_resume(samples: Path, tmp_path: Path) -> None:
    from export.text.train import TrainConfig, train

    torch.set_num_threads(1)
    config = TrainConfig(steps=1, batch_size=2, size=64, freeze_stages=3)
    train([samples], tmp_path / "run", config)
    with pytest.raises(ValueError, match="another configuration"):
        train([samples], tmp_path / "run", replace(config, lr=0.5))


def test_data_weights_must_match_the_directories(samples: Path, tmp_path: Path) -> None:
    from export.text.train import TrainConfig, train

    with pytest.raises(ValueError, match="one non-negative weight per data directory"):
        train([samples], tmp_path / "run", TrainConfig(steps=1, batch_size=2, size=64, data_weights=(1.0, 2.0)))
