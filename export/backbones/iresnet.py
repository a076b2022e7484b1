"""Improved ResNets (iresnet18/34/50/100) with the CR-FIQA quality head.

Parameter names and their order follow the released CR-FIQA backbones, so an official
state_dict loads into these modules without renaming.
"""

from __future__ import annotations

import torch
from torch import nn

# Feature-map side after the four stride-2 stages for a 112x112 input.
FINAL_MAP_SIZE = 7
STAGE_WIDTHS = (64, 128, 256, 512)
BLOCKS_PER_STAGE = {
    "iresnet18": (2, 2, 2, 2),
    "iresnet34": (3, 4, 6, 3),
    "iresnet50": (3, 4, 14, 3),
    "iresnet100": (3, 13, 30, 3),
}


def _conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


class ImprovedBasicBlock(nn.Module):
    """BN - conv3x3 - BN - PReLU - conv3x3(stride) - BN, plus the (projected) input."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = _conv3x3(in_channels, out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.prelu = nn.PReLU(out_channels)
        self.conv2 = _conv3x3(out_channels, out_channels, stride)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.bn1(x)
        out = self.conv1(out)
        out = self.bn2(out)
        out = self.prelu(out)
        out = self.conv2(out)
        out = self.bn3(out)
        return out + shortcut


def _stage(in_channels: int, out_channels: int, num_blocks: int) -> nn.Sequential:
    blocks = [ImprovedBasicBlock(in_channels, out_channels, stride=2)]
    blocks += [ImprovedBasicBlock(out_channels, out_channels, 1) for _ in range(num_blocks - 1)]
    return nn.Sequential(*blocks)


class IResNet(nn.Module):
    """Face-recognition iresnet whose forward returns (embedding, quality)."""

    def __init__(
        self, blocks_per_stage: tuple[int, ...], *, dropout: float = 0.0, embedding_size: int = 512
    ) -> None:
        super().__init__()
        stem_width = STAGE_WIDTHS[0]
        self.conv1 = _conv3x3(3, stem_width)
        self.bn1 = nn.BatchNorm2d(stem_width)
        self.prelu = nn.PReLU(stem_width)
        in_widths = (stem_width, *STAGE_WIDTHS[:-1])
        self.layer1 = _stage(in_widths[0], STAGE_WIDTHS[0], blocks_per_stage[0])
        self.layer2 = _stage(in_widths[1], STAGE_WIDTHS[1], blocks_per_stage[1])
        self.layer3 = _stage(in_widths[2], STAGE_WIDTHS[2], blocks_per_stage[2])
        self.layer4 = _stage(in_widths[3], STAGE_WIDTHS[3], blocks_per_stage[3])
        self.bn2 = nn.BatchNorm2d(STAGE_WIDTHS[-1])
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(STAGE_WIDTHS[-1] * FINAL_MAP_SIZE**2, embedding_size)
        self.features = nn.BatchNorm1d(embedding_size)
        self.qs = nn.Linear(embedding_size, 1)
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, ImprovedBasicBlock):
                # Residual branches start near zero so the deep stack begins close to identity.
                nn.init.zeros_(module.bn3.weight)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.bn2(x)
        x = self.dropout(torch.flatten(x, 1))
        embedding = self.features(self.fc(x))
        return embedding, self.qs(embedding)
