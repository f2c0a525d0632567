"""MANet, the multi-attention classification network of Wang et al. ("Multi-attention based cross-domain beauty product image retrieval", Sci China Inf Sci 2020), in plain
PyTorch on our EfficientNet-Lite0.

Three branches, all fully convolutional, meeting on the backbone's last-conv grid (stride 32, (h, w)):

- Backbone: EfficientNet-Lite0 (ImageNet init, trainable). X0 (N, 1280, h, w) is the head-conv feature map after
  BN + ReLU6: exactly what `VisualTrunk` returns as X, so an untrained saliency / text branch reduces to it.
- Saliency attention ("up-to-down" then "down-to-up"): an FPN-like top-down pathway takes the stride-32
  semantics (a 1x1 reduction of X0) down to strides 16 and 8, adding lateral 1x1 projections of the backbone's
  stride-16 (block 10, 112 ch) and stride-8 (block 4, 40 ch) outputs; a PANet-like bottom-up pathway then merges
  back from stride 8 to 16 to 32 with stride-2 3x3 convs, and a 1x1 conv + sigmoid gives S (N, 1, h, w) in
  [0, 1]. Trained with the Dice loss of eq. 1 (`export.train.losses.dice_loss`) against pseudo masks.
  X = X0 * S.
- Text attention: a frozen EAST (`export.models.east`), never trained here (the seed: "its parameters are frozen,
  and we update the parameters of backbone network and saliency attention branch only"). Its score map (stride 4)
  is average-pooled onto (h, w) as the runtime's `text_mask` does, giving the text mask; eq. 2 adjusts it to
  T in (1, 2) and eq. 3 gives X~ = T * X.

Eq. 2 and our EAST. The seed writes T = sigmoid(T_m) + 1, i.e. it treats the text mask T_m as a logit. Our EAST
outputs a probability p in [0, 1] (sigmoid already applied, DEVELOPERS.md "Text detector"). Feeding p to eq. 2 as
it is would give T = sigmoid(p) + 1 in [1.5, 1.73]: text cells would weigh at most 15 % more than background
ones, far from the (1, 2) range eq. 2 intends. So T_m is taken as the logit of the pooled probability,
T_m = log(p / (1 - p)) with p clipped to [1e-4, 1 - 1e-4], and eq. 2 then gives T = 1 + p_clipped: background
(p ~ 0) keeps weight ~1, text (p ~ 1) gets ~2, and T stays strictly inside (1, 2).

`MANet.forward` returns a `MANetOutput` for training; `InferenceGraph` is the ONNX-exportable view returning
(X~, S, T_prob) under the names `X`, `S` (the visual model contract) and `T` (the pooled text probability, for
inspection).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from runtime.describe.pooling import DEFAULT_LEVELS, rmac_regions

from ..train.losses import binarise_at_mean

from .efficientnet_lite import (
    BN_EPS,
    BN_MOMENTUM,
    FEATURE_DIM,
    EfficientNetLite0,
    VisualTrunk,
    load_imagenet_lite0,
)

__all__ = [
    "MANet",
    "MANetOutput",
    "InferenceGraph",
    "SaliencyBranch",
    "TEXT_PROB_EPS",
    "SALIENCY_TAPS",
    "text_probability",
    "adjusted_text_mask",
]

#: Indices into EfficientNetLite0._blocks whose outputs feed the saliency branch laterally: the last block at
#: stride 8 (40 channels) and the last block at stride 16 (112 channels).
SALIENCY_TAPS = (4, 10)
_TAP_CHANNELS = (40, 112)
#: Clip of the text probability before the logit of eq. 2, so T_m is finite and T stays strictly in (1, 2).
TEXT_PROB_EPS = 1e-4
#: Temperature of the cosine head: logits span [-16, 16], enough for a confident softmax over ~100 classes.
COSINE_SCALE = 16.0


def _conv_bn_relu(c_in: int, c_out: int, kernel: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(c_out, eps=BN_EPS, momentum=BN_MOMENTUM),
        nn.ReLU(inplace=True),
    )


class SaliencyBranch(nn.Module):
    """Saliency attention f(., Theta) of eq. 1: backbone features at strides 8, 16, 32 -> S (N, 1, h, w) in [0, 1].

    "up-to-down" (FPN): P32 = 1x1(X0); P16 = 3x3(1x1(C16) + up(P32)); P8 = 3x3(1x1(C8) + up(P16)).
    "down-to-up" (PANet): N8 = P8; N16 = 3x3(P16 + down(N8)); N32 = 3x3(P32 + down(N16)), down = 3x3 stride 2.
    S = sigmoid(1x1(N32)). Upsampling goes to the lateral's exact size (bilinear), and a 3x3 stride-2 conv with
    padding 1 maps n to ceil(n / 2), the backbone's own rounding, so any input size works.
    """

    def __init__(self, channels: int = 64, in_channels: tuple[int, int, int] = (*_TAP_CHANNELS, FEATURE_DIM)) -> None:
        super().__init__()
        c8, c16, c32 = in_channels
        c = channels
        self.lateral32 = _conv_bn_relu(c32, c, 1)
        self.lateral16 = _conv_bn_relu(c16, c, 1)
        self.lateral8 = _conv_bn_relu(c8, c, 1)
        self.smooth16 = _conv_bn_relu(c, c, 3)
        self.smooth8 = _conv_bn_relu(c, c, 3)
        self.down8 = _conv_bn_relu(c, c, 3, stride=2)
        self.down16 = _conv_bn_relu(c, c, 3, stride=2)
        self.merge16 = _conv_bn_relu(c, c, 3)
        self.merge32 = _conv_bn_relu(c, c, 3)
        self.head = nn.Conv2d(c, 1, 1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        # A quiet head: S starts at ~0.5 everywhere, so X starts as X0 / 2 for every position alike.
        nn.init.normal_(self.head.weight, std=0.01)
        nn.init.zeros_(self.head.bias)

    @staticmethod
    def _up(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)

    def forward(self, c8: torch.Tensor, c16: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        # "up-to-down": high-level semantics find where the salient object is.
        p32 = self.lateral32(x0)
        p16 = self.smooth16(self.lateral16(c16) + self._up(p32, c16))
        p8 = self.smooth8(self.lateral8(c8) + self._up(p16, c8))
        # "down-to-up": merge the finer maps back so object extent and detail reach the stride-32 grid.
        n16 = self.merge16(p16 + self.down8(p8))
        n32 = self.merge32(p32 + self.down16(n16))
        return torch.sigmoid(self.head(n32))


def text_probability(score: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """EAST's score map (N, 1, H/4, W/4) averaged onto the (h, w) feature grid: the text mask as a probability.

    adaptive_avg_pool2d uses the same bin edges as the runtime's `runtime.reading.detector.text_mask`. Where the
    grid divides the map (the usual case), the same mean is an avg_pool2d, which the TorchScript ONNX exporter of
    the training prefix (`export.train.prefix`) can write without knowing the map's size.
    """
    height, width = int(score.shape[-2]), int(score.shape[-1])
    if height % grid[0] == 0 and width % grid[1] == 0:
        return F.avg_pool2d(score, (height // grid[0], width // grid[1]))
    return F.adaptive_avg_pool2d(score, grid)


def adjusted_text_mask(prob: torch.Tensor, eps: float = TEXT_PROB_EPS) -> torch.Tensor:
    """Eq. 2, T = sigmoid(T_m) + 1, with T_m = logit(p) of the pooled EAST probability (see the module doc).

    The logit is written as log(p) - log(1 - p) (plain ops, exportable at any opset); numerically T = 1 + p_clipped.
    """
    p = prob.clamp(eps, 1.0 - eps)
    t_m = torch.log(p) - torch.log1p(-p)  # T_m = logit(p): EAST's probability back on eq. 2's logit scale
    return torch.sigmoid(t_m) + 1.0  # eq. 2


@dataclass
class MANetOutput:
    """What one training forward pass gives.

    logits: (N, num_classes) from the pooled X~ (None when the model has no classifier).
    X_tilde: (N, 1280, h, w), eq. 3's T * X.  S: (N, 1, h, w) saliency in [0, 1] (ones when disabled).
    T: (N, 1, h, w) the adjusted text mask of eq. 2, in (1, 2) (ones when disabled).
    T_prob: (N, 1, h, w) EAST's pooled probability (zeros when disabled).  X0: (N, 1280, h, w) backbone features.
    """

    logits: torch.Tensor | None
    X_tilde: torch.Tensor
    S: torch.Tensor
    T: torch.Tensor
    T_prob: torch.Tensor
    X0: torch.Tensor


class _GeM(nn.Module):
    """Generalised-mean pooling, (mean x^p)^(1/p), p learnable (Radenovic et al.); inputs are >= 0 here."""

    def __init__(self, p: float = 3.0, eps: float = 1e-6) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.tensor(float(p)))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.clamp(min=self.eps).pow(self.p).mean(dim=(2, 3)).pow(1.0 / self.p)


def srmac_pool(X: torch.Tensor, S: torch.Tensor, levels: int = DEFAULT_LEVELS) -> torch.Tensor:
    """SR-MAC (eqs. 4-7) in PyTorch, region for region what the runtime computes (`runtime.describe.pooling.srmac`), so a
    loss on it trains the very descriptor the index holds. The region weights |R n S| / |R| (eq. 5) come from S
    binarised at its mean (the runtime's rule, `binarise_at_mean`) and carry no gradient (the saliency branch learns
    from eq. 1's Dice loss)."""
    regions = rmac_regions(X.shape[2], X.shape[3], levels)
    salient = binarise_at_mean(S.detach()).to(X.dtype)[:, 0]
    region_max = torch.stack([X[:, :, y0:y1, x0:x1].amax(dim=(2, 3)) for y0, x0, y1, x1 in regions], dim=1)  # eq. 4
    weights = torch.stack([salient[:, y0:y1, x0:x1].mean(dim=(1, 2)) for y0, x0, y1, x1 in regions], dim=1)  # eq. 5
    return F.normalize((weights[..., None] * F.normalize(region_max, dim=2)).sum(dim=1), dim=1)  # eqs. 6-7


class MANet(nn.Module):
    """MANet: backbone + saliency attention + frozen text attention (+ a classifier for training).

    Args:
        num_classes: classes of the training head; 0 builds no classifier (feature extraction only).
        east: the text detector (`export.models.east.EAST`, e.g. `export.text.train.load_trained(...)`), required
            when ``use_text``. It is frozen here: requires_grad False, and eval mode whatever ``train()`` says.
        use_saliency / use_text: ablation switches; a disabled branch is not built / not run and its mask is
            all ones (S := 1, T := 1).
        pretrained: ImageNet weights for the backbone (``load_imagenet_lite0``); False gives random init (tests).
        channels: width of the saliency branch.
        pool: "avg" (global average pooling, the seed's classification network), "gem", or "srmac": the SR-MAC
            descriptor itself (eqs. 4-7, `srmac_pool`), so the head's loss is a retrieval loss on what is indexed.
        head: "linear" (the seed's softmax classifier) or "cosine": normalised softmax, logits = s * cos(pooled,
            w_c) (Zhai & Wu 2019). Retrieval compares L2-normalised descriptors by cosine, so training the
            classifier on the same geometry pulls each class into a tight cone around its weight vector.
        dropout: before the final Linear.
        text_scale: EAST sees the image resized by this factor (sides rounded to multiples of 32). Its map is
            pooled onto the 1/32 grid anyway, so 0.5 keeps the text mask's resolution there at a quarter of
            EAST's cost, in training and at query time alike.
        freeze_backbone_bn: keep the backbone's BatchNorm layers in eval mode under ``train()`` (their affine
            weights still train). Small CPU batches would otherwise overwrite the ImageNet running statistics
            with noisy ones, and the retrieval features drift for nothing.
        freeze_all_bn: the same for every BatchNorm (the saliency branch's too): needed when the weights come
            from a shipped ONNX file, whose BatchNorms were folded into fixed affine maps (`models.from_onnx`).

    Input: (N, 3, H, W) RGB normalised as (x - 127) / 128 (the visual card's mean / std, also EAST's). With the
    text branch H and W must be multiples of 32 (EAST's requirement); then (h, w) = (H / 32, W / 32).
    """

    def __init__(self, num_classes: int, east: nn.Module | None = None, *, use_saliency: bool = True,
                 use_text: bool = True, pretrained: bool = True, channels: int = 64, pool: str = "avg",
                 head: str = "linear", dropout: float = 0.2, freeze_backbone_bn: bool = True,
                 text_scale: float = 1.0, freeze_all_bn: bool = False) -> None:
        super().__init__()
        if use_text and east is None:
            raise ValueError("use_text=True needs a text detector: pass east=build_east(...) or load_trained(...)")
        if pool not in ("avg", "gem", "srmac"):
            raise ValueError(f"pool must be 'avg', 'gem' or 'srmac', got {pool!r}")
        if head not in ("linear", "cosine"):
            raise ValueError(f"head must be 'linear' or 'cosine', got {head!r}")
        if not 0.0 < text_scale <= 1.0:
            raise ValueError(f"text_scale must be in (0, 1], got {text_scale}")
        lite0: EfficientNetLite0 = load_imagenet_lite0() if pretrained else EfficientNetLite0()
        # VisualTrunk holds the stem, blocks and head conv (no ImageNet classifier); parameter names are then
        # `backbone._conv_stem.weight`, ..., the same as the exported ImageNet trunk's.
        self.backbone = VisualTrunk(lite0)
        self.use_saliency = use_saliency
        self.use_text = use_text
        self.freeze_backbone_bn = freeze_backbone_bn
        self.freeze_all_bn = freeze_all_bn
        self.saliency = SaliencyBranch(channels) if use_saliency else None
        self.east = east if use_text else None
        if self.east is not None:
            for p in self.east.parameters():
                p.requires_grad_(False)
        self.text_scale = text_scale
        self.num_classes = num_classes
        self.pool = pool
        self.head = head
        if num_classes > 0:
            self.gem = _GeM() if pool == "gem" else None
            self.dropout = nn.Dropout(dropout)
            self.classifier = nn.Linear(FEATURE_DIM, num_classes, bias=head == "linear")
            nn.init.normal_(self.classifier.weight, std=0.01)
            if head == "linear":
                nn.init.zeros_(self.classifier.bias)
        else:
            self.gem = None
            self.dropout = None
            self.classifier = None
        self.train(self.training)

    def train(self, mode: bool = True) -> "MANet":
        super().train(mode)
        if self.east is not None:
            self.east.eval()  # frozen branch: its BatchNorm statistics never move
        if mode and (self.freeze_backbone_bn or self.freeze_all_bn):
            for m in (self if self.freeze_all_bn else self.backbone).modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.eval()
        return self

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Backbone, saliency branch and classifier parameters (what the optimiser gets; EAST is excluded)."""
        return [p for p in self.parameters() if p.requires_grad]

    def frozen_prefix(self, image: torch.Tensor, split: int) -> tuple[torch.Tensor, ...]:
        """Backbone blocks [0, split) and the text branch: (C8, C16, the input of block ``split``, EAST's pooled
        text probability). A CPU run caches this per augmented view when those blocks are frozen."""
        b = self.backbone
        if split <= SALIENCY_TAPS[1]:
            raise ValueError(f"split must come after the saliency taps {SALIENCY_TAPS}, got {split}")
        x = F.relu6(b._bn0(b._conv_stem(image)))
        taps = []
        for i, block in enumerate(b._blocks[:split]):
            x = block(x)
            if i in SALIENCY_TAPS:
                taps.append(x)
        # int(): while ONNX export traces (`export.train.prefix`), shapes are tensors; the sides are fixed per run.
        grid = (int(image.shape[-2]) // 32, int(image.shape[-1]) // 32)
        if self.east is not None:
            # The frozen EAST never gets a gradient (and the image none through it): the branch is fixed.
            t_prob = text_probability(self.east(self._text_input(image))[0].detach(), grid)
        else:
            t_prob = torch.zeros(image.shape[0], 1, *grid, dtype=image.dtype, device=image.device)
        return taps[0], taps[1], x, t_prob

    def _text_input(self, image: torch.Tensor) -> torch.Tensor:
        """The image EAST sees: resized by ``text_scale``, each side a multiple of 32 (EAST's requirement)."""
        if self.text_scale == 1.0:
            return image
        # int(side): as in `frozen_prefix`, a constant while ONNX export traces.
        size = [max(32, int(round(int(side) * self.text_scale / 32)) * 32) for side in image.shape[-2:]]
        return F.interpolate(image, size=size, mode="bilinear", align_corners=False, antialias=False)

    def attend_from_prefix(self, c8: torch.Tensor, c16: torch.Tensor, x: torch.Tensor, t_prob: torch.Tensor,
                           split: int) -> MANetOutput:
        """The three branches after ``frozen_prefix`` (logits None)."""
        b = self.backbone
        for block in b._blocks[split:]:
            x = block(x)
        x0 = F.relu6(b._bn1(b._conv_head(x)))  # the same layers as VisualTrunk / _trunk_forward
        ones = torch.ones_like(x0[:, :1])
        # Saliency attention: S = f(image, Theta), X = X0 * S.
        S = self.saliency(c8, c16, x0) if self.saliency is not None else ones
        T = adjusted_text_mask(t_prob) if self.east is not None else ones  # eq. 2 with T_m = logit(t_prob)
        X_tilde = T * (x0 * S)  # eq. 3: X~_kij = T_ij * X_kij (broadcast over channels k)
        return MANetOutput(None, X_tilde, S, T, t_prob, x0)

    def attend(self, image: torch.Tensor) -> MANetOutput:
        """The three branches without the classifier (logits None)."""
        split = len(self.backbone._blocks)
        return self.attend_from_prefix(*self.frozen_prefix(image, split), split)

    def forward_from_prefix(self, c8: torch.Tensor, c16: torch.Tensor, x: torch.Tensor, t_prob: torch.Tensor,
                            split: int) -> MANetOutput:
        """``forward`` after ``frozen_prefix``: identical results, trainable part only."""
        return self._classify(self.attend_from_prefix(c8, c16, x, t_prob, split))

    def forward(self, image: torch.Tensor) -> MANetOutput:
        return self._classify(self.attend(image))

    def _classify(self, out: MANetOutput) -> MANetOutput:
        if self.classifier is not None:
            if self.pool == "srmac":
                pooled = srmac_pool(out.X_tilde, out.S)
            elif self.gem is not None:
                pooled = self.gem(out.X_tilde)
            else:
                pooled = out.X_tilde.mean(dim=(2, 3))
            pooled = self.dropout(pooled)
            if self.head == "cosine":
                out.logits = COSINE_SCALE * F.linear(F.normalize(pooled, dim=1), F.normalize(self.classifier.weight, dim=1))
            else:
                out.logits = self.classifier(pooled)
        return out


class InferenceGraph(nn.Module):
    """ONNX view of a (trained) MANet: image -> (X, S, T) = (X~, S, T_prob).

    `X` (N, 1280, h, w) is eq. 3's X~ and `S` (N, 1, h, w) the saliency: the visual model contract, so SR-MAC
    (runtime/describe/pooling.py) gets both. `T` (N, 1, h, w) is EAST's pooled probability before eq. 2 (zeros when the
    text branch is off), exported for inspection; the weight actually applied is 1 + clip(T, 1e-4, 1 - 1e-4).
    """

    output_names = ("X", "S", "T")

    def __init__(self, manet: MANet) -> None:
        super().__init__()
        self.manet = manet

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.manet.attend(image)
        return out.X_tilde, out.S, out.T_prob
