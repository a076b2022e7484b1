"""Training inputs: uint8 RGB 112x112 crops -> normalised float tensors, with a random flip and,
for some samples, one degradation of random strength (blur, downscale, JPEG, noise, darkening or
occlusion) to show the quality head what poor captures look like."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from fiqa_cli import model_contract
from fiqa_cli.runtime import degrade


def to_input_tensor(rgb: np.ndarray) -> torch.Tensor:
    """HxWx3 uint8 RGB -> 3xHxW float32 normalised as the model contract says ([-1, 1])."""
    pixels = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float() / 255.0
    mean = torch.tensor(model_contract.MEAN).view(3, 1, 1)
    std = torch.tensor(model_contract.STD).view(3, 1, 1)
    return (pixels - mean) / std


@dataclasses.dataclass(frozen=True)
class TrainingDegradation:
    """One kind of fiqa_cli.runtime.degrade degradation, at a strength drawn between the one where
    its physical parameter is `weakest` (a visible degradation) and the strongest."""

    kind: str
    weakest: float

    def __call__(
        self, rgb: np.ndarray, draw: float, rng: np.random.Generator | None = None
    ) -> np.ndarray:
        """Degrade at the strength that `draw`, uniform in [0, 1], picks from the range. Noise
        comes from `rng`, by default from torch's generator, which DataLoader seeds per worker."""
        lowest = degrade.degradation_strength(self.kind, self.weakest)
        strength = lowest + (1.0 - lowest) * draw
        if rng is None:
            rng = np.random.default_rng(int(torch.randint(2**31, ())))
        return degrade.degrade(
            rgb, self.kind, strength, color_order=model_contract.COLOR_ORDER, rng=rng
        )


DEGRADATIONS = (
    TrainingDegradation("blur", weakest=0.5),  # Gaussian sigma, pixels
    TrainingDegradation("downscale", weakest=1.5),  # shrink factor
    TrainingDegradation("jpeg", weakest=90),  # JPEG quality
    TrainingDegradation("noise", weakest=4.0),  # noise std, grey levels
    TrainingDegradation("underexposure", weakest=0.75),  # exposure factor
    TrainingDegradation("occlusion", weakest=0.1),  # covered fraction of the height, from the chin
)


class TrainTransform:
    """Random horizontal flip; for a fraction of samples, one degradation of random strength.
    Returns the input tensor and whether the sample was degraded.

    Degraded samples show the quality head what poor captures look like: their lower certainty
    ratio becomes its target. Randomness comes from torch, which DataLoader seeds per worker.
    """

    def __init__(self, degradation_fraction: float = 0.0) -> None:
        self.degradation_fraction = degradation_fraction

    def __call__(self, rgb: np.ndarray) -> tuple[torch.Tensor, bool]:
        if torch.rand(()) < 0.5:
            rgb = rgb[:, ::-1]
        degraded = bool(torch.rand(()) < self.degradation_fraction)
        if degraded:
            degradation = DEGRADATIONS[int(torch.randint(len(DEGRADATIONS), ()))]
            rgb = degradation(np.ascontiguousarray(rgb), float(torch.rand(())))
        return to_input_tensor(rgb), degraded
