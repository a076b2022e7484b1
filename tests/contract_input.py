"""The model contract's input tensor written out by hand, for tests that must not compute
their expectation with the code under test (`crops_to_input`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def by_hand_contract(crops_bgr: Sequence[np.ndarray]) -> np.ndarray:
    """BGR uint8 crops as the contract's input: RGB, pixel / 127.5 - 1, NCHW, float32."""
    rgb = np.stack([crop[..., ::-1] / 127.5 - 1.0 for crop in crops_bgr])
    return np.ascontiguousarray(rgb.transpose(0, 3, 1, 2), dtype=np.float32)
