"""MANet (Wang et al., Sci China Inf Sci 2020): model contract, frozen text branch, eq. 1 loss, pseudo masks, augmentation, a tiny training run.

Small inputs (128 px) and an untrained EAST keep the file fast on one CPU thread.
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")
cv2 = pytest.importorskip("cv2")

from torch import nn  # noqa: E402

from export.models.east import build_east  # noqa: E402
from export.models.manet import InferenceGraph, MANet, adjusted_text_mask  # noqa: E402
from export.train.augment import StoreLikeConfig, heap_like, photo_augment, store_like  # noqa: E402
from export.train.losses import binarise_at_mean, dice_loss  # noqa: E402
from export.train.saliency import (  # noqa: E402
    channel_energy,
    foreground_mask,
    pseudo_mask_from_features,
    pseudo_mask_from_product_mask,
)

SIZE = 128
GRID = (SIZE // 32, SIZE // 32)


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def east():
    torch.manual_seed(0)
    return build_east(pretrained=False)


def normalise(images: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float, (x - 127) / 128 as the model card says."""
    return torch.from_numpy((images.astype(np.float32) - 127.0) / 128.0).permute(0, 3, 1, 2).contiguous()


class FakeEAST(nn.Module):
    """Stands in for EAST with a known score map: text (0.9) in the top-left quarter, 0.0 elsewhere."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, image: torch.Tensor):
        n, _, h, w = image.shape
        score = torch.zeros(n, 1, h // 4, w // 4) + 0 * self.weight
        score[:, :, : h // 8, : w // 8] = 0.9
        return score, torch.zeros(n, 5, h // 4, w // 4)


# --- model contract -----------------------------------------------------------------------------------------------


def test_output_shapes_and_ranges(east):
    torch.manual_seed(0)
    model = MANet(7, east, pretrained=False).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, SIZE, SIZE))
    assert out.logits.shape == (2, 7)
    assert out.X_tilde.shape == (2, 1280, *GRID)
    assert out.S.shape == out.T.shape == out.T_prob.shape == (2, 1, *GRID)
    assert float(out.S.min()) >= 0.0 and float(out.S.max()) <= 1.0
    assert float(out.T.min()) > 1.0 and float(out.T.max()) < 2.0
    # Eqs. 2-3: X~ = T * (X0 * S), T = sigmoid(logit(p)) + 1 = 1 + p.
    torch.testing.assert_close(out.X_tilde, out.T * out.X0 * out.S)
    torch.testing.assert_close(out.T, 1.0 + out.T_prob.clamp(1e-4, 1 - 1e-4))
    graph = InferenceGraph(model).eval()
    with torch.no_grad():
        X, S, T = graph(torch.randn(1, 3, SIZE, SIZE))
    assert X.shape == (1, 1280, *GRID) and S.shape == T.shape == (1, 1, *GRID)
    assert float(T.min()) >= 0.0 and float(T.max()) <= 1.0


def test_text_mask_is_pooled_probability_as_at_runtime():
    from runtime.reading.detector import text_mask

    model = MANet(0, FakeEAST(), pretrained=False, use_saliency=False).eval()
    image = torch.zeros(1, 3, 160, 96)
    with torch.no_grad():
        out = model(image)
        score, _ = model.east(image)
    expected = text_mask(score.numpy(), out.T_prob.shape[2:])
    np.testing.assert_allclose(out.T_prob.numpy(), expected, atol=1e-6)
    assert float(out.T.max()) == pytest.approx(1.9, abs=1e-5)  # text cells weigh ~2, not sigmoid(0.9) + 1
    assert float(out.T.min()) == pytest.approx(1.0001, abs=1e-5)  # background ~1
    assert out.logits is None


class RecordingEAST(FakeEAST):
    """FakeEAST that remembers the input sizes it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[int, int]] = []

    def forward(self, image: torch.Tensor):
        self.seen.append(tuple(image.shape[-2:]))
        return super().forward(image)


def test_text_scale_runs_east_on_a_smaller_image_and_keeps_the_grid():
    east = RecordingEAST()
    model = MANet(0, east, pretrained=False, use_saliency=False, text_scale=0.5).eval()
    with torch.no_grad():
        out = model(torch.zeros(1, 3, 320, 224))
    assert east.seen == [(160, 128)]  # 224 / 2 = 112 rounds to the nearest multiple of 32
    assert out.T_prob.shape == (1, 1, 10, 7)
    # FakeEAST marks the top-left eighth of whatever it sees: the pooled mask lands on the same cells either way.
    full = MANet(0, FakeEAST(), pretrained=False, use_saliency=False).eval()
    with torch.no_grad():
        reference = full(torch.zeros(1, 3, 320, 224))
    assert torch.equal(out.T_prob > 0.5, reference.T_prob > 0.5)
    with pytest.raises(ValueError):
        MANet(0, east, pretrained=False, text_scale=0.0)


def test_cosine_head_logits_are_scaled_cosines():
    from export.models.manet import COSINE_SCALE

    torch.manual_seed(0)
    model = MANet(5, None, pretrained=False, use_text=False, head="cosine", pool="gem", dropout=0.0).eval()
    assert model.classifier.bias is None
    with torch.no_grad():
        out = model(torch.randn(3, 3, SIZE, SIZE))
        pooled = model.gem(out.X_tilde)
        cosines = nn.functional.normalize(pooled, dim=1) @ nn.functional.normalize(model.classifier.weight, dim=1).T
    torch.testing.assert_close(out.logits, COSINE_SCALE * cosines)
    assert float(out.logits.abs().max()) <= COSINE_SCALE + 1e-4
    with pytest.raises(ValueError):
        MANet(5, None, pretrained=False, use_text=False, head="arcface")


def test_adjusted_text_mask_spans_one_to_two():
    p = torch.tensor([0.0, 0.5, 1.0])
    T = adjusted_text_mask(p)
    assert float(T[0]) > 1.0 and float(T[2]) < 2.0
    assert float(T[1]) == pytest.approx(1.5)
    assert float(T[2] - T[0]) > 0.99  # sigmoid(p) + 1 would span only 0.23


def test_east_frozen_and_eval_after_train(east):
    model = MANet(3, east, pretrained=False)
    model.train()
    assert model.training and not model.east.training
    assert all(not m.training for m in model.east.modules())
    assert all(not p.requires_grad for p in model.east.parameters())
    trainable = {id(p) for p in model.trainable_parameters()}
    assert not any(id(p) in trainable for p in model.east.parameters())
    assert all(p.requires_grad for p in model.saliency.parameters())
    assert all(p.requires_grad for p in model.backbone.parameters())


def test_gradients_reach_saliency_and_backbone_not_east(east):
    torch.manual_seed(0)
    model = MANet(3, east, pretrained=False).train()
    out = model(torch.randn(2, 3, SIZE, SIZE))
    loss = nn.functional.cross_entropy(out.logits, torch.tensor([0, 2])) + dice_loss(out.S, torch.ones_like(out.S))
    loss.backward()
    assert any(float(p.grad.abs().sum()) > 0 for p in model.saliency.parameters() if p.grad is not None)
    assert model.saliency.head.weight.grad is not None
    assert model.backbone._conv_stem.weight.grad is not None
    assert float(model.backbone._conv_stem.weight.grad.abs().sum()) > 0
    assert all(p.grad is None for p in model.east.parameters())


def test_ablation_switches(east):
    image = torch.randn(1, 3, SIZE, SIZE)
    no_sal = MANet(2, east, pretrained=False, use_saliency=False).eval()
    with torch.no_grad():
        out = no_sal(image)
    assert no_sal.saliency is None and torch.equal(out.S, torch.ones_like(out.S))
    no_text = MANet(2, None, pretrained=False, use_text=False).eval()
    with torch.no_grad():
        out = no_text(image)
    assert no_text.east is None and torch.equal(out.T, torch.ones_like(out.T))
    torch.testing.assert_close(out.X_tilde, out.X0 * out.S)
    with pytest.raises(ValueError):
        MANet(2, None, pretrained=False)


# --- eq. 1 ----------------------------------------------------------------------------------------------------------


def test_dice_loss_by_hand():
    a = torch.zeros(1, 1, 4, 8)
    a[..., :4] = 1  # columns 0-3
    b = torch.zeros(1, 1, 4, 8)
    b[..., 4:] = 1  # columns 4-7
    c = torch.zeros(1, 1, 4, 8)
    c[..., 2:6] = 1  # columns 2-5: half of a
    assert float(dice_loss(a, a)) == 0.0
    assert float(dice_loss(a, b)) == 1.0
    assert float(dice_loss(a, c)) == pytest.approx(0.5)  # 1 - 2 * 8 / (16 + 16)
    soft = torch.full_like(a, 0.5)
    assert float(dice_loss(soft, a)) == pytest.approx(1 - 2 * 8 / (16 + 16))
    # Per image, then the batch mean: (0 + 1) / 2.
    assert float(dice_loss(torch.cat([a, a]), torch.cat([a, b]))) == pytest.approx(0.5)
    assert float(dice_loss(torch.zeros_like(a), torch.zeros_like(a))) == 0.0
    with pytest.raises(ValueError):
        dice_loss(a, a[..., :4])


def test_binarise_at_mean_by_hand():
    m = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]], [[[5.0, 5.0], [5.0, 5.0]]], [[[0.3, 0.3], [0.3, 0.9]]]])
    expected = torch.tensor([[[[0.0, 0.0], [1.0, 1.0]]], [[[1.0, 1.0], [1.0, 1.0]]], [[[0.0, 0.0], [0.0, 1.0]]]])
    assert torch.equal(binarise_at_mean(m), expected)
    assert torch.equal(binarise_at_mean(torch.full((1, 1, 3, 3), 0.1)), torch.ones(1, 1, 3, 3))


def test_pseudo_masks():
    X0 = torch.zeros(2, 8, 4, 4)
    X0[0, :, 1:3, 1:3] = 5.0
    X0[1, :3, 0, :] = 1.0
    energy = channel_energy(X0)
    assert float(energy.min()) == 0.0 and float(energy.max()) == 1.0
    mask = pseudo_mask_from_features(X0)
    assert mask.shape == (2, 1, 4, 4)
    assert torch.equal(mask[0, 0], (X0[0, 0] > 0).float())
    assert torch.equal(mask[1, 0], (X0[1, 0] > 0).float())
    product = np.zeros((128, 128), np.float32)
    product[32:96, 64:128] = 1.0
    grid_mask = pseudo_mask_from_product_mask(product, (4, 4))
    expected = torch.zeros(4, 4)
    expected[1:3, 2:] = 1.0
    assert torch.equal(grid_mask[0, 0], expected)


def test_foreground_mask_fills_white_print():
    image = np.full((120, 100, 3), 255, np.uint8)
    image[20:100, 30:80] = (200, 30, 30)  # a red pack
    image[50:60, 40:70] = 255  # with a white label inside
    mask = foreground_mask(image)
    expected = np.zeros((120, 100), np.float32)
    expected[20:100, 30:80] = 1.0
    assert mask.dtype == np.float32
    np.testing.assert_array_equal(mask, expected)
    assert not foreground_mask(np.full((50, 50, 3), 250, np.uint8)).any()


# --- augmentation ---------------------------------------------------------------------------------------------------


def white_square_product() -> tuple[np.ndarray, np.ndarray]:
    image = np.full((180, 150, 3), 128, np.uint8)
    image[40:120, 30:110] = 255
    mask = np.zeros((180, 150), np.float32)
    mask[40:120, 30:110] = 1.0
    return image, mask


def asymmetric_pack() -> np.ndarray:
    """White backdrop; pack with a green top band, red left half and blue right half."""
    image = np.full((200, 160, 3), 255, np.uint8)
    image[30:170, 30:130] = (220, 20, 20)
    image[30:170, 80:130] = (20, 20, 220)
    image[30:60, 30:130] = (20, 200, 20)
    return image


def test_store_like_shapes_and_background():
    image = asymmetric_pack()
    rng = np.random.default_rng(0)
    background = np.random.default_rng(1).integers(0, 256, (90, 140, 3), dtype=np.uint8)
    for bg in (None, background):
        out, mask = store_like(image, None, rng, SIZE, bg)
        assert out.shape == (SIZE, SIZE, 3) and out.dtype == np.uint8
        assert mask.shape == (SIZE, SIZE) and mask.dtype == np.float32
        assert 0.0 <= float(mask.min()) and float(mask.max()) <= 1.0 and mask.sum() > 0
    out, mask = photo_augment(image, None, rng, SIZE)
    assert out.shape == (SIZE, SIZE, 3) and out.dtype == np.uint8 and mask is None
    out, mask = photo_augment(image, foreground_mask(image), rng, 96)
    assert out.shape == (96, 96, 3) and mask.shape == (96, 96) and mask.dtype == np.float32


def test_store_like_mask_follows_the_product_exactly():
    image, product = white_square_product()
    black = np.zeros((300, 300, 3), np.uint8)
    config = replace(StoreLikeConfig().geometric_only(), p_paste=1.0, p_background_photo=1.0)
    for seed in range(4):
        out, mask = store_like(image, product, np.random.default_rng(seed), SIZE, black, config=config)
        grey = out.astype(np.float32).mean(axis=2)
        inside, outside = mask > 0.999, mask < 0.001
        assert inside.sum() > 50 and outside.sum() > 50
        assert grey[inside].min() >= 254  # every fully-product pixel is the white product
        assert grey[outside].max() <= 1  # every non-product pixel is the black background
        # Edge pixels: composite = warped * m + 0 * (1 - m), and the warped image lies in [128, 255] there.
        edge = ~inside & ~outside
        assert np.all(grey[edge] <= 255 * mask[edge] + 1) and np.all(grey[edge] >= 128 * mask[edge] - 1)
    # With the full photometric pipeline the bright region still matches the mask.
    for seed in range(4):
        out, mask = store_like(image, product, np.random.default_rng(seed), SIZE, black)
        bright = out.astype(np.float32).mean(axis=2) > 128
        m = mask > 0.5
        assert (bright & m).sum() / (bright | m).sum() > 0.8


def test_heap_like_fills_the_frame_with_copies_its_mask_marks():
    image, product = white_square_product()
    flat = StoreLikeConfig().geometric_only()
    for seed in range(3):
        out, mask = heap_like(image, product, np.random.default_rng(seed), SIZE, photometry=flat)
        assert out.shape == (SIZE, SIZE, 3) and out.dtype == np.uint8 and mask.shape == (SIZE, SIZE)
        assert (mask > 0.5).mean() > 0.4  # a heap, not one placed product
        # every fully-product pixel is a copy of the white product, at most shaded to 0.75 of its brightness
        assert out.astype(np.float32).mean(axis=2)[mask > 0.999].min() >= 0.75 * 255 - 1
    a = heap_like(image, None, np.random.default_rng(5), SIZE)
    b = heap_like(image, None, np.random.default_rng(5), SIZE)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_augment_is_deterministic():
    image = asymmetric_pack()
    background = np.random.default_rng(1).integers(0, 256, (90, 140, 3), dtype=np.uint8)
    a = store_like(image, None, np.random.default_rng(5), SIZE, background)
    b = store_like(image, None, np.random.default_rng(5), SIZE, background)
    c = store_like(image, None, np.random.default_rng(6), SIZE, background)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    p = photo_augment(image, None, np.random.default_rng(5), SIZE)
    q = photo_augment(image, None, np.random.default_rng(5), SIZE)
    assert np.array_equal(p[0], q[0])


def test_no_flips():
    image = asymmetric_pack()
    for seed in range(6):
        rng = np.random.default_rng(seed)
        for out, mask in (store_like(image, None, rng, SIZE), photo_augment(image, None, rng, SIZE)):
            px = out.astype(np.int32)
            r, g, b = px[..., 0], px[..., 1], px[..., 2]
            red = (r > g + 60) & (r > b + 60)
            blue = (b > r + 60) & (b > g + 60)
            green = (g > r + 60) & (g > b + 60)
            if mask is not None:
                red, blue, green = red & (mask > 0.5), blue & (mask > 0.5), green & (mask > 0.5)
            ys, xs = np.mgrid[0:SIZE, 0:SIZE]
            assert red.sum() > 20 and blue.sum() > 20 and green.sum() > 20
            assert xs[red].mean() < xs[blue].mean()  # no horizontal flip: red stays left of blue
            assert ys[green].mean() < ys[red].mean()  # no vertical flip: the green band stays on top


# --- a tiny training run ------------------------------------------------------------------------------------------


def make_catalogue(label: int, variant: int) -> np.ndarray:
    """A clean catalogue image: class 0 a red disc, class 1 a blue box, both with dark text-like stripes."""
    rng = np.random.default_rng(100 + 10 * label + variant)
    image = np.full((160, 160, 3), 255, np.uint8)
    if label == 0:
        cv2.circle(image, (80, 80), 55 + int(rng.integers(-5, 6)), (210, 40, 40), -1)
    else:
        cv2.rectangle(image, (35, 25), (125, 135), (40, 60, 200), -1)
    for k in range(3):
        y = 55 + 20 * k
        x0 = 50 + int(rng.integers(0, 10))
        cv2.rectangle(image, (x0, y), (x0 + 55 + int(rng.integers(0, 10)), y + 5), (20, 20, 20), -1)
    return image


@pytest.mark.slow
def test_tiny_training_lowers_losses(east):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    images, masks, labels = [], [], []
    for i in range(8):
        label = i % 2
        image, mask = store_like(make_catalogue(label, i // 2), None, rng, SIZE)
        images.append(image)
        masks.append(mask)
        labels.append(label)
    x = normalise(np.stack(images))
    y = torch.tensor(labels)
    target = pseudo_mask_from_product_mask(np.stack(masks), GRID)
    assert target.shape == (8, 1, *GRID)

    model = MANet(2, east, pretrained=True, dropout=0.0)

    def losses() -> tuple[float, float]:
        model.eval()
        with torch.no_grad():
            out = model(x)
        return float(nn.functional.cross_entropy(out.logits, y)), float(dice_loss(out.S, target))

    ce0, dice0 = losses()
    optimiser = torch.optim.Adam(model.trainable_parameters(), lr=1e-3)
    model.train()
    for _ in range(15):
        out = model(x)
        loss = nn.functional.cross_entropy(out.logits, y) + dice_loss(out.S, target)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    ce1, dice1 = losses()
    assert ce1 + dice1 < ce0 + dice0
    assert ce1 < ce0 and dice1 < dice0
    assert math.isfinite(ce1) and math.isfinite(dice1)
