"""MobileFaceNet (Chen et al., 2018) with the CR-FIQA quality head.

About a million parameters, only Conv/BatchNorm/PReLU/Linear operators: cheap on a CPU and
exported to ONNX without custom ops.
"""

from __future__ import annotations

import torch
from torch import nn

STEM_WIDTH = 64
HEAD_WIDTH = 512
# Side of the last feature map for a 112x112 input; the global depthwise conv covers all of it.
FINAL_MAP_SIZE = 7
# (expansion, output channels, repeats, stride of the first repeat), as in the paper's Table 1.
BOTTLENECK_SETTINGS = (
    (2, 64, 5, 2),
    (4, 128, 1, 2),
    (2, 128, 6, 1),
    (4, 128, 1, 2),
    (2, 128, 2, 1),
)


class ConvBlock(nn.Module):
    """Conv - BN, followed by PReLU unless the block is linear."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        stride: int = 1,
        groups: int = 1,
        padding: int | None = None,
        linear: bool = False,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=kernel_size // 2 if padding is None else padding,
            groups=groups,
            bias=False,
        )
        self.bn = nn.BatchNorm2d(out_channels)
        self.prelu = None if linear else nn.PReLU(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return x if self.prelu is None else self.prelu(x)


class Bottleneck(nn.Module):
    """Inverted residual: 1x1 expand, 3x3 depthwise, linear 1x1 project."""

    def __init__(self, in_channels: int, out_channels: int, expansion: int, stride: int) -> None:
        super().__init__()
        hidden = in_channels * expansion
        self.expand = ConvBlock(in_channels, hidden, 1)
        self.depthwise = ConvBlock(hidden, hidden, 3, stride=stride, groups=hidden)
        self.project = ConvBlock(hidden, out_channels, 1, linear=True)
        self.use_shortcut = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.depthwise(self.expand(x)))
        return x + out if self.use_shortcut else out


def _bottlenecks() -> nn.Sequential:
    blocks = []
    in_channels = STEM_WIDTH
    for expansion, out_channels, repeats, first_stride in BOTTLENECK_SETTINGS:
        for index in range(repeats):
            stride = first_stride if index == 0 else 1
            blocks.append(Bottleneck(in_channels, out_channels, expansion, stride))
            in_channels = out_channels
    return nn.Sequential(*blocks)


class MobileFaceNet(nn.Module):
    """MobileFaceNet whose forward returns (embedding, quality)."""

    def __init__(self, *, dropout: float = 0.0, embedding_size: int = 512) -> None:
        super().__init__()
        self.stem = ConvBlock(3, STEM_WIDTH, 3, stride=2)
        self.stem_depthwise = ConvBlock(STEM_WIDTH, STEM_WIDTH, 3, groups=STEM_WIDTH)
        self.bottlenecks = _bottlenecks()
        last_width = BOTTLENECK_SETTINGS[-1][1]
        self.conv_head = ConvBlock(last_width, HEAD_WIDTH, 1)
        # Global depthwise conv: a learned spatial weighting instead of average pooling.
        self.gdc = ConvBlock(
            HEAD_WIDTH, HEAD_WIDTH, FINAL_MAP_SIZE, groups=HEAD_WIDTH, padding=0, linear=True
        )
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(HEAD_WIDTH, embedding_size, bias=False)
        self.features = nn.BatchNorm1d(embedding_size)
        self.qs = nn.Linear(embedding_size, 1)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                # fan_in counts a depthwise filter's real inputs; fan_out would shrink it by groups.
                nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.stem_depthwise(self.stem(x))
        x = self.conv_head(self.bottlenecks(x))
        x = self.dropout(torch.flatten(self.gdc(x), 1))
        embedding = self.features(self.fc(x))
        return embedding, self.qs(embedding)
