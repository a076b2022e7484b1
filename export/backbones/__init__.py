"""Face-recognition backbones with the CR-FIQA quality head, looked up by name.

Every backbone maps a float32 Nx3x112x112 RGB batch in [-1, 1] to (embedding Nx512,
quality Nx1); the quality head `qs` reads the BatchNorm1d `features` output.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from torch import nn

from fiqa_cli.export.backbones.iresnet import BLOCKS_PER_STAGE, IResNet
from fiqa_cli.export.backbones.mobilefacenet import MobileFaceNet

# Each factory takes the keyword arguments `dropout` and `embedding_size`.
BACKBONES: dict[str, Callable[..., nn.Module]] = {
    **{name: partial(IResNet, blocks) for name, blocks in BLOCKS_PER_STAGE.items()},
    "mobilefacenet": MobileFaceNet,
}


def create_backbone(name: str, *, dropout: float = 0.0, embedding_size: int = 512) -> nn.Module:
    """Build the backbone called `name`, randomly initialised."""
    try:
        factory = BACKBONES[name]
    except KeyError:
        known = ", ".join(sorted(BACKBONES))
        raise ValueError(f"unknown backbone {name!r}; known backbones: {known}") from None
    return factory(dropout=dropout, embedding_size=embedding_size)
