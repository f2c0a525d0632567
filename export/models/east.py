"""EAST text detector (Zhou et al., "EAST: An Efficient and Accurate Scene Text Detector", CVPR 2017) on the
EfficientNet-Lite0 backbone, in plain PyTorch.

Layout (DEVELOPERS.md, "Text detector (EAST)"):

- Feature extractor: EfficientNet-Lite0 with its ImageNet weights; the U-net taps the outputs of blocks 2, 4, 10
  and 15 (strides 4, 8, 16, 32; 24, 40, 112 and 320 channels). The 1x1 head conv (1280 channels) and the classifier
  are left out: the merging branch starts from the 320-channel map, which is what the paper does with the last
  stage of its backbone, and saves 0.4 M parameters and the most expensive 1x1 conv at stride 32.
- Feature-merging branch (paper, Fig. 3): h1 = f1; g_i = unpool(h_i) (x2 bilinear); h_{i+1} = conv3x3(conv1x1(
  [g_i, f_{i+1}])) with 128, 64, 32 channels; then a 3x3 conv with 32 channels; every conv BN + ReLU.
- Output at stride 4: `score` = sigmoid(1x1 conv), `geometry` = 4 distances + angle (RBOX).

Distances are ``sigmoid * geo_scale`` (512 px by default, as in the widely used TensorFlow re-implementation
argman/EAST): the output is bounded and positive, so the -log IoU loss never meets a
zero-sized or infinite box, the gradient is alive everywhere at initialisation (ReLU would start half the cells
dead and exp overflows early in training with a randomly initialised head), and 512 px covers a text line's
half-extent at the input sizes we train and run at (<= 1024 px). The angle is ``(sigmoid - 0.5) * angle_range``:
with the default pi / 2 that is (-pi/4, pi/4), as in the paper, where horizontal-ish text lies (the synthetic data
rotates by at most 45 degrees, and PP-OCR orders its corners by image position, so its boxes land there too).
``angle_range=pi`` covers the contract's whole (-pi/2, pi/2], for data with text steeper than 45 degrees.

The backbone's TF "SAME" padding depends on the input size in general. For the sizes EAST accepts (multiples of
32) every stride-2 conv sees an even size, and then SAME is a constant pad, (k - 2) // 2 before and the rest after.
So the backbone's size-dependent `Conv2dSame` layers are swapped for `StaticSameConv2d`, which pads those
constants: same weights and parameter names, identical results on those sizes, and no shape arithmetic in the
graph, so the ONNX export keeps H and W truly dynamic.
"""
from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from .efficientnet_lite import (
    BN_EPS,
    BN_MOMENTUM,
    INPUT_MEAN,
    INPUT_STD,
    Conv2dSame,
    EfficientNetLite0,
    load_imagenet_lite0,
)

__all__ = [
    "ANGLE_RANGE",
    "EAST",
    "FEATURE_BLOCKS",
    "GEO_SCALE",
    "INPUT_MEAN",
    "INPUT_STD",
    "SIZE_MULTIPLE",
    "STRIDE",
    "StaticSameConv2d",
    "build_east",
]

#: Output stride of the score and geometry maps.
STRIDE = 4
#: H and W must be multiples of this (the deepest backbone stride).
SIZE_MULTIPLE = 32
#: Indices into EfficientNetLite0._blocks whose outputs are the features at strides 4, 8, 16 and 32.
FEATURE_BLOCKS = (2, 4, 10, 15)
#: Channels of those features.
FEATURE_CHANNELS = (24, 40, 112, 320)
#: Channels of the merging branch after each merge (strides 16, 8, 4) and of the last 3x3 conv.
MERGE_CHANNELS = (128, 64, 32, 32)
#: Default scale of the distance outputs, in input pixels.
GEO_SCALE = 512.0
#: Width of the angle output's interval, centred on 0: pi / 2 gives the paper's (-pi/4, pi/4).
ANGLE_RANGE = math.pi / 2
#: Distance the freshly initialised head predicts everywhere, in input pixels (about half a word's height + width).
GEO_PRIOR = 32.0
#: Backbone groups by stride, as block index ranges; group 0 also holds the stem. ``freeze_stages=k`` freezes the
#: first k groups: 1 = stride 2 (stem + block 0), 2 = up to stride 4, 3 = stride 8, 4 = stride 16, 5 = everything.
_GROUPS = ((0, 1), (1, 3), (3, 5), (5, 11), (11, 16))


class StaticSameConv2d(nn.Conv2d):
    """TF "SAME" convolution for inputs whose size is a multiple of the stride: the padding is then a constant.

    With size % stride == 0, SAME gives ``total = max(kernel - stride, 0)`` pixels of padding, the odd one after
    (bottom/right), whatever the size. Raises if an input breaks that assumption instead of silently padding
    differently from the TF-trained weights.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int, groups: int = 1) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0, groups=groups, bias=False)
        pads = []
        for k, s in zip(reversed(self.kernel_size), reversed(self.stride)):  # F.pad order: last axis first
            total = max(k - s, 0)
            pads += [total // 2, total - total // 2]
        self._pads = tuple(pads)

    @classmethod
    def from_same(cls, conv: Conv2dSame) -> "StaticSameConv2d":
        new = cls(conv.in_channels, conv.out_channels, conv.kernel_size[0], conv.stride[0], conv.groups)
        new.weight = conv.weight  # shared Parameter: the name stays `weight`, no copy
        return new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_tracing() and not torch.compiler.is_compiling():
            sh, sw = self.stride
            if x.shape[-2] % sh or x.shape[-1] % sw:
                raise ValueError(f"StaticSameConv2d needs sizes divisible by the stride, got {tuple(x.shape[-2:])}")
        if any(self._pads):
            x = F.pad(x, self._pads)
        return super().forward(x)


def _static_same_padding(module: nn.Module) -> None:
    """Replace, in place, every size-dependent Conv2dSame under ``module`` with a StaticSameConv2d."""
    for name, child in module.named_children():
        if isinstance(child, Conv2dSame) and child._dynamic_pad:
            setattr(module, name, StaticSameConv2d.from_same(child))
        else:
            _static_same_padding(child)


def _conv_bn_relu(c_in: int, c_out: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(c_out, eps=BN_EPS, momentum=BN_MOMENTUM),
        nn.ReLU(inplace=True),
    )


class _Merge(nn.Module):
    """One step of the merging branch: unpool x2, concat with the skip feature, 1x1 conv, 3x3 conv."""

    def __init__(self, c_deep: int, c_skip: int, c_out: int) -> None:
        super().__init__()
        self.reduce = _conv_bn_relu(c_deep + c_skip, c_out, 1)
        self.fuse = _conv_bn_relu(c_out, c_out, 3)

    def forward(self, deep: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(deep, scale_factor=2.0, mode="bilinear", align_corners=False)
        return self.fuse(self.reduce(torch.cat([up, skip], dim=1)))


class EAST(nn.Module):
    """EAST (RBOX) on EfficientNet-Lite0: ``forward(image) -> (score, geometry)`` per the ONNX contract.

    ``image`` is (N, 3, H, W), RGB normalised as (x - 127) / 128, H and W multiples of 32. ``score`` is
    (N, 1, H/4, W/4) in [0, 1]; ``geometry`` is (N, 5, H/4, W/4): d_top, d_right, d_bottom, d_left in input
    pixels (0..geo_scale), then theta in radians (+-angle_range / 2, by default -pi/4..pi/4).

    ``freeze_stages`` (0..5) freezes the backbone's first groups by stride (1: stem and stride 2, 2: up to stride
    4, 3: 8, 4: 16, 5: the whole backbone): their weights get no gradient and their BatchNorms stay in eval mode
    even under ``train()``, so small CPU batches neither pay for their backward pass nor disturb their statistics.
    """

    def __init__(self, backbone: EfficientNetLite0 | None = None, *, pretrained: bool = True,
                 freeze_stages: int = 0, geo_scale: float = GEO_SCALE, angle_range: float = ANGLE_RANGE) -> None:
        super().__init__()
        if not 0 <= freeze_stages <= len(_GROUPS):
            raise ValueError(f"freeze_stages must be in 0..{len(_GROUPS)}, got {freeze_stages}")
        if not 0 < angle_range <= math.pi or geo_scale <= 0:
            raise ValueError(f"need 0 < angle_range <= pi and geo_scale > 0, got {angle_range}, {geo_scale}")
        if backbone is None:
            backbone = load_imagenet_lite0() if pretrained else EfficientNetLite0()
        else:
            backbone = copy.deepcopy(backbone)  # the padding swap below must not change the caller's model
        # Only the trunk up to the last block is used; the head conv and classifier stay behind.
        self.stem = backbone._conv_stem
        self.stem_bn = backbone._bn0
        self.blocks = nn.ModuleList(backbone._blocks[: FEATURE_BLOCKS[-1] + 1])
        _static_same_padding(self)

        c4, c8, c16, c32 = FEATURE_CHANNELS
        m16, m8, m4, m_out = MERGE_CHANNELS
        self.merge16 = _Merge(c32, c16, m16)
        self.merge8 = _Merge(m16, c8, m8)
        self.merge4 = _Merge(m8, c4, m4)
        self.out_conv = _conv_bn_relu(m4, m_out, 3)
        self.score_head = nn.Conv2d(m_out, 1, 1)
        self.geo_head = nn.Conv2d(m_out, 4, 1)
        self.angle_head = nn.Conv2d(m_out, 1, 1)
        self.geo_scale = float(geo_scale)
        self.angle_range = float(angle_range)
        self.freeze_stages = freeze_stages
        self._init_decoder()
        for module in self._frozen_modules():
            for p in module.parameters():
                p.requires_grad_(False)
        self.train(self.training)

    def _init_decoder(self) -> None:
        for module in (self.merge16, self.merge8, self.merge4, self.out_conv):
            for m in module.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        for head in (self.score_head, self.geo_head, self.angle_head):
            nn.init.normal_(head.weight, std=0.01)
            nn.init.zeros_(head.bias)
        # Start with few positives (focal-loss style prior of 1 %): all-0.5 scores would make every cell text.
        nn.init.constant_(self.score_head.bias, -math.log(99.0))
        # Start with text-sized boxes (distances ~ GEO_PRIOR px) rather than sigmoid(0) * 512 = 256 px per side,
        # whose IoU with real words is ~0 (-log IoU ~ 6) and whose gradients are then mostly noise.
        prior = min(GEO_PRIOR, self.geo_scale / 2) / self.geo_scale
        nn.init.constant_(self.geo_head.bias, math.log(prior / (1.0 - prior)))

    def _frozen_modules(self) -> list[nn.Module]:
        if self.freeze_stages == 0:
            return []
        modules: list[nn.Module] = [self.stem, self.stem_bn]
        last_block = _GROUPS[self.freeze_stages - 1][1]
        modules += list(self.blocks[:last_block])
        return modules

    def train(self, mode: bool = True) -> "EAST":
        super().train(mode)
        for module in self._frozen_modules():
            module.eval()
        return self

    def features(self, image: torch.Tensor) -> list[torch.Tensor]:
        """Backbone features at strides 4, 8, 16 and 32."""
        x = F.relu6(self.stem_bn(self.stem(image)))
        taps = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in FEATURE_BLOCKS:
                taps.append(x)
        return taps

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not torch.jit.is_tracing() and not torch.compiler.is_compiling():
            if image.ndim != 4 or image.shape[1] != 3:
                raise ValueError(f"EAST expects images (N, 3, H, W), got {tuple(image.shape)}")
            if image.shape[-2] % SIZE_MULTIPLE or image.shape[-1] % SIZE_MULTIPLE:
                raise ValueError(f"EAST needs H and W multiples of {SIZE_MULTIPLE}, got {tuple(image.shape[-2:])}")
        f4, f8, f16, f32 = self.features(image)
        x = self.merge16(f32, f16)
        x = self.merge8(x, f8)
        x = self.merge4(x, f4)
        x = self.out_conv(x)
        score = torch.sigmoid(self.score_head(x))
        distances = torch.sigmoid(self.geo_head(x)) * self.geo_scale
        angle = (torch.sigmoid(self.angle_head(x)) - 0.5) * self.angle_range
        return score, torch.cat([distances, angle], dim=1)


def build_east(*, pretrained: bool = True, freeze_stages: int = 0, geo_scale: float = GEO_SCALE,
               angle_range: float = ANGLE_RANGE) -> EAST:
    """EAST with the ImageNet EfficientNet-Lite0 backbone (``pretrained``) and a freshly initialised decoder."""
    return EAST(pretrained=pretrained, freeze_stages=freeze_stages, geo_scale=geo_scale, angle_range=angle_range)
