"""Face embeddings from an ArcFace-style recognition model in ONNX, for comparison scores.

The model is only a measuring instrument for `fiqa evaluate`: any network that maps an aligned
face crop to an embedding works. What the graph declares (input name, spatial size, channel
layout, fixed or dynamic batch) is read from it; what it does not declare (pixel
normalisation) defaults to the convention of `mobilefacenet_eval.onnx`, RGB (pixel - 127.5) / 128,
and can be overridden: insightface's ArcFace models (`ArcFaceONNX`) divide by 127.5 instead
(`--fr-std 127.5`), or take raw pixels when their graph normalises itself.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from fiqa_cli.choices import FR_MEAN, FR_STD
from fiqa_cli.errors import ModelFileError
from fiqa_cli.model_contract import INPUT_SIZE
from fiqa_cli.runtime.providers import CPU, Providers, open_session

# A dynamic batch axis is fed this many crops per run; enough to amortise the call overhead.
_DYNAMIC_BATCH = 32
_EXPECTED = "expected a face-recognition model: one image input, an embedding output"


class FaceRecognizer:
    """One onnxruntime session that turns 112x112-style BGR crops into L2-normalised rows."""

    def __init__(
        self,
        model_path: Path,
        *,
        mean: float = FR_MEAN,
        std: float = FR_STD,
        providers: Providers | None = None,
    ) -> None:
        self.session = open_session(model_path, providers or [CPU], expected=_EXPECTED)
        model_input = self.session.get_inputs()[0]
        self.input_name = model_input.name
        try:
            self.channels_first, self.input_size = _layout_and_size(model_input.shape)
        except ValueError as error:
            raise ModelFileError(f"{model_path}: {error}; {_EXPECTED}") from None
        batch = model_input.shape[0]
        self.fixed_batch = batch if isinstance(batch, int) and batch > 0 else None
        self.mean = mean
        self.std = std

    def embed(self, crops_bgr: np.ndarray) -> np.ndarray:
        """Embed N aligned HxWx3 uint8 BGR crops; returns N x D float32 unit vectors."""
        crops_bgr = np.asarray(crops_bgr)
        if len(crops_bgr) == 0:
            raise ValueError("no crops to embed")
        batch = self.fixed_batch or _DYNAMIC_BATCH
        rows = [
            self._run(crops_bgr[start : start + batch]) for start in range(0, len(crops_bgr), batch)
        ]
        embeddings = np.concatenate(rows).astype(np.float32)
        return embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True).clip(1e-12)

    def _run(self, crops_bgr: np.ndarray) -> np.ndarray:
        count = len(crops_bgr)
        tensor = self._preprocess(crops_bgr)
        if self.fixed_batch and count < self.fixed_batch:
            # A fixed batch larger than what is left is padded; the padding rows are dropped.
            padding = np.zeros((self.fixed_batch - count, *tensor.shape[1:]), tensor.dtype)
            tensor = np.concatenate([tensor, padding])
        output = self.session.run(None, {self.input_name: tensor})[0]
        return output.reshape(len(tensor), -1)[:count]

    def _preprocess(self, crops_bgr: np.ndarray) -> np.ndarray:
        size = self.input_size
        if crops_bgr.shape[1:3] != (size, size):
            crops_bgr = np.stack([cv2.resize(crop, (size, size)) for crop in crops_bgr])
        rgb = crops_bgr[..., ::-1].astype(np.float32)
        tensor = (rgb - self.mean) / self.std
        return np.ascontiguousarray(tensor.transpose(0, 3, 1, 2) if self.channels_first else tensor)


def _layout_and_size(shape: list) -> tuple[bool, int]:
    """(channels_first, spatial size) from a 4-d input shape such as [1, 3, 112, 112]."""
    if len(shape) != 4:
        raise ValueError(f"recognition model input must be 4-d (N, C, H, W or N, H, W, C): {shape}")
    if shape[1] == 3:
        height, width = shape[2], shape[3]
        channels_first = True
    elif shape[3] == 3:
        height, width = shape[1], shape[2]
        channels_first = False
    else:
        raise ValueError(f"recognition model input has no 3-channel axis: {shape}")
    if not isinstance(height, int) or not isinstance(width, int):
        return channels_first, INPUT_SIZE  # dynamic: ArcFace models are trained on 112x112
    if height != width:
        raise ValueError(f"recognition model input is not square: {shape}")
    return channels_first, height
