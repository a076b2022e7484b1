"""Aligned face crops to the float32 NCHW tensor a quality model takes.

The scorer feeds each model as its metadata says; the exporter feeds the contract's values
when it checks an export against its checkpoint. Both go through this one function so that
the parity check measures the preprocessing `fiqa score` really applies.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from fiqa_cli import model_contract as contract


def crops_to_input(
    crops_bgr: Sequence[np.ndarray],
    *,
    input_size: int = contract.INPUT_SIZE,
    color_order: str = contract.COLOR_ORDER,
    pixel_scale: float = contract.PIXEL_SCALE,
    mean: Sequence[float] = contract.MEAN,
    std: Sequence[float] = contract.STD,
) -> np.ndarray:
    """HxWx3 uint8 BGR crops, resized to `input_size` where needed, as
    (pixel * pixel_scale - mean) / std per channel in `color_order` (RGB or BGR)."""
    size = (input_size, input_size)
    batch = np.stack(
        [
            crop if crop.shape[:2] == size else cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
            for crop in crops_bgr
        ]
    )
    if color_order == "RGB":
        batch = batch[..., ::-1]
    std = np.asarray(std, dtype=np.float32)
    # (pixel * scale - mean) / std folded into one multiply-add per channel
    gain = (pixel_scale / std).astype(np.float32)
    offset = (-np.asarray(mean, dtype=np.float32) / std).astype(np.float32)
    tensor = batch.astype(np.float32) * gain + offset
    return np.ascontiguousarray(tensor.transpose(0, 3, 1, 2))
