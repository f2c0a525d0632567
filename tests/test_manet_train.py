"""MANet training on cached views: the split forward equals the whole one, a short run learns, resume works."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("cv2")

from .conftest import DEMO  # noqa: E402


@pytest.fixture(scope="module")
def examples():
    from export.bundle.catalog import read_catalog_csv
    from export.train.categories import categories_from_groups
    from export.train.manet import load_examples

    rows, problems = read_catalog_csv(DEMO / "catalog.csv")
    assert not problems
    labels, names = categories_from_groups([row.group for row in rows], [row.id for row in rows])
    return load_examples(rows[:8], labels[:8], max_side=160), len(names)


def test_catalogue_cut_outs_are_told_from_photos(examples) -> None:
    found, _ = examples
    # The demo catalogue alternates iconic cut-out and store photo rows.
    assert [e.catalogue for e in found] == [True, False] * 4
    for example in found:
        assert example.mask.shape == example.pixels.shape[:2]


def test_split_forward_equals_the_whole_forward() -> None:
    from export.models.east import build_east
    from export.models.manet import MANet

    torch.manual_seed(0)
    model = MANet(5, build_east(pretrained=False), pretrained=False).eval()
    image = torch.rand(2, 3, 128, 128) * 2 - 1
    with torch.no_grad():
        whole = model(image)
        c8, c16, x, t_prob = model.frozen_prefix(image, 15)
        split = model.forward_from_prefix(c8, c16, x, t_prob, 15)
    torch.testing.assert_close(split.logits, whole.logits, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(split.X_tilde, whole.X_tilde, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_short_run_learns_and_resumes(examples, tmp_path: Path) -> None:
    from export.train.manet import ManetConfig, train_manet

    torch.set_num_threads(1)
    found, classes = examples
    config = ManetConfig(steps=12, batch_size=8, size=96, lr=3e-3, use_text=False, views=2, catalogue_views=3,
                         checkpoint_every=6, log_every=1)
    train_manet(found, classes, tmp_path / "run", config, until=6)
    checkpoint = train_manet(found, classes, tmp_path / "run", config)
    log = [line for line in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines() if '"step"' in line]
    steps = [int(line.split('"step": ')[1].split(",")[0]) for line in log]
    assert steps == list(range(1, 13))
    losses = [float(line.split('"classification": ')[1].split(",")[0]) for line in log]
    assert np.mean(losses[-3:]) < np.mean(losses[:3])
    assert torch.load(checkpoint, weights_only=True)["step"] == 12
    with pytest.raises(ValueError, match="another configuration"):
        train_manet(found, classes, tmp_path / "run", replace(config, lr=1.0))


@pytest.mark.parametrize("constant", [None, 0.1, 0.2, 0.7])
def test_srmac_head_pools_exactly_what_the_runtime_indexes(constant) -> None:
    from export.models.manet import srmac_pool
    from runtime.describe.pooling import srmac

    rng = np.random.default_rng(0)
    X = rng.uniform(0, 6, (3, 1280, 8, 8)).astype(np.float32)
    S = rng.uniform(0, 1, (3, 1, 8, 8)).astype(np.float32) if constant is None else np.full((3, 1, 8, 8), constant, np.float32)
    np.testing.assert_allclose(srmac_pool(torch.from_numpy(X), torch.from_numpy(S)).numpy(), srmac(X, S), atol=1e-6)


@pytest.mark.slow
def test_fresh_views_with_the_srmac_head_learn_and_are_reproducible(examples, tmp_path: Path) -> None:
    from export.train.manet import ManetConfig, train_manet

    torch.set_num_threads(1)
    found, classes = examples
    config = ManetConfig(steps=12, batch_size=8, size=96, lr=3e-3, use_text=False, fresh_views=True, pool="srmac",
                         head="cosine", train_from_block=13, checkpoint_every=6, log_every=1)
    train_manet(found, classes, tmp_path / "a", config, until=6)
    train_manet(found, classes, tmp_path / "a", config)  # resumed
    train_manet(found, classes, tmp_path / "b", config)  # in one go

    def losses(run: str) -> list[float]:
        lines = [line for line in (tmp_path / run / "train_log.jsonl").read_text().splitlines() if '"step"' in line]
        return [float(line.split('"classification": ')[1].split(",")[0]) for line in lines]

    assert len(losses("a")) == 12 and losses("a") == pytest.approx(losses("b"), rel=1e-4)
    assert np.mean(losses("a")[-3:]) < np.mean(losses("a")[:3])


def test_the_frozen_prefix_on_onnx_runtime_equals_pytorch() -> None:
    from export.models.east import build_east
    from export.models.manet import MANet
    from export.train.prefix import OnnxPrefix

    torch.manual_seed(0)
    model = MANet(5, build_east(pretrained=False), pretrained=False, text_scale=0.5).train()  # BatchNorms of the
    prefix = OnnxPrefix(model, 11, 128)  # backbone and EAST stay in eval mode: the prefix is a fixed function
    image = torch.rand(4, 3, 128, 128) * 2 - 1
    with torch.no_grad():
        expected = model.frozen_prefix(image, 11)
    for want, got in zip(expected, prefix(image)):
        assert got.shape == want.shape
        torch.testing.assert_close(got, want, rtol=1e-3, atol=1e-4)


def test_the_margin_lowers_only_the_own_class_logit() -> None:
    from export.train.losses import margin_logits

    logits = torch.tensor([[4.0, 2.0, -1.0], [0.5, 3.0, 1.0]])
    labels = torch.tensor([0, 2])
    shifted = margin_logits(logits, labels, 0.25, 16.0)
    assert torch.equal(shifted - logits, torch.tensor([[-4.0, 0.0, 0.0], [0.0, 0.0, -4.0]]))
    assert torch.nn.functional.cross_entropy(shifted, labels) > torch.nn.functional.cross_entropy(logits, labels)
    assert margin_logits(logits, labels, 0.0, 16.0) is logits


def test_a_margin_needs_the_cosine_head_and_old_runs_still_resume(examples, tmp_path: Path) -> None:
    from export.train.manet import ManetConfig, train_manet

    torch.set_num_threads(1)
    found, classes = examples
    with pytest.raises(ValueError, match="cosine head"):
        train_manet(found, classes, tmp_path / "linear", ManetConfig(steps=1, margin=0.2, use_text=False))
    config = ManetConfig(steps=2, batch_size=4, size=96, use_text=False, views=1, catalogue_views=1,
                         head="cosine", checkpoint_every=1)
    checkpoint = train_manet(found, classes, tmp_path / "run", config, until=1)
    state = torch.load(checkpoint, weights_only=True)
    del state["config"]["margin"]  # as a run checkpointed before the margin existed
    torch.save(state, checkpoint)
    train_manet(found, classes, tmp_path / "run", config)
    assert torch.load(checkpoint, weights_only=True)["step"] == 2
    with pytest.raises(ValueError, match="another configuration"):
        train_manet(found, classes, tmp_path / "run", replace(config, steps=3, margin=0.2))


def test_the_cross_domain_loss_pairs_the_two_halves() -> None:
    from export.train.losses import cross_domain_loss

    catalogue = torch.eye(4, 8)
    matched = cross_domain_loss(torch.cat([catalogue, catalogue + 0.01]), 16.0)
    crossed = cross_domain_loss(torch.cat([catalogue, catalogue.roll(1, dims=0)]), 16.0)
    assert matched < 0.01 < 1.0 < crossed
    with pytest.raises(ValueError, match="even number of rows"):
        cross_domain_loss(torch.ones(3, 8), 16.0)


def test_paired_batches_hold_a_catalogue_view_and_a_photo_of_each_product(examples, tmp_path: Path) -> None:
    from export.train.manet import ManetConfig, pairable, paired_picks, train_manet

    found, classes = examples
    pairs = pairable(found)
    assert pairs and all(found[c].catalogue and not found[p].catalogue for cs, ps in pairs.values() for c, p in zip(cs, ps))
    picks = paired_picks(pairs, 2, np.random.default_rng(0))
    half = len(picks) // 2
    assert [found[i].label for i in picks[:half]] == [found[i].label for i in picks[half:]]
    assert all(found[i].catalogue for i in picks[:half]) and not any(found[i].catalogue for i in picks[half:])
    torch.set_num_threads(1)
    config = ManetConfig(steps=2, batch_size=4, size=96, use_text=False, fresh_views=True, pool="srmac",
                         head="cosine", train_from_block=14, cross_domain=1.0, log_every=1)
    train_manet(found, classes, tmp_path / "run", config)
    assert '"cross_domain": ' in (tmp_path / "run" / "train_log.jsonl").read_text()
    with pytest.raises(ValueError, match="fresh views and the srmac pooling"):
        train_manet(found, classes, tmp_path / "cached", replace(config, fresh_views=False))
