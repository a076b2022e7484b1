"""Static int8 quantisation of an exported quality model (`fiqa export --int8 CROPS`).

Weights are quantised per output channel and activations with ranges calibrated on aligned face
crops (onnxruntime's static quantisation, MinMax ranges), so the crops should be faces like
those the model will score. An int8 model is not a copy of the float32 one to a few digits: it
is judged by whether it *orders* faces as the float32 model does (Spearman's rank correlation of
the qualities on held-out crops, `fiqa export --parity-images`).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quant_pre_process,
    quantize_static,
)

from fiqa_cli import model_contract
from fiqa_cli.errors import FiqaError
from fiqa_cli.export.crop_folder import read_aligned_crops
from fiqa_cli.runtime.model_input import crops_to_input

PRECISION = "int8"
# Activation ranges settle after a few hundred faces; fewer than 50 miss the tails.
MIN_CALIBRATION_CROPS = 50
MAX_CALIBRATION_CROPS = 500
MIN_RANK_CORRELATION = 0.99
_CALIBRATION_BATCH = 16


class QuantizationError(FiqaError):
    """The model cannot be quantised as asked; the message says why."""


def calibration_inputs(crops_dir: Path) -> np.ndarray:
    """Model inputs (N x 3 x 112 x 112) of up to MAX_CALIBRATION_CROPS aligned crops."""
    crops = read_aligned_crops(
        Path(crops_dir),
        option="--int8",
        limit=MAX_CALIBRATION_CROPS,
        minimum=MIN_CALIBRATION_CROPS,
        error=QuantizationError,
    )
    return crops_to_input(crops)


class _Batches(CalibrationDataReader):
    def __init__(self, inputs: np.ndarray) -> None:
        self._batches = iter(
            [inputs[i : i + _CALIBRATION_BATCH] for i in range(0, len(inputs), _CALIBRATION_BATCH)]
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        return None if batch is None else {model_contract.INPUT_NAME: batch}


def quantize(fp32_path: Path, out_path: Path, calibration: np.ndarray) -> None:
    """Write the int8 form of the float32 model at `fp32_path` to `out_path`, its metadata
    kept and its precision recorded as int8."""
    with tempfile.TemporaryDirectory(prefix="fiqa-int8-") as folder:
        prepared = Path(folder) / "prepared.onnx"
        # Shape inference and graph fusions first, as onnxruntime recommends before quantising.
        quant_pre_process(str(fp32_path), str(prepared))
        quantize_static(
            str(prepared),
            str(out_path),
            _Batches(calibration),
            quant_format=QuantFormat.QOperator,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
    model = onnx.load(str(out_path))
    properties = {prop.key: prop.value for prop in model.metadata_props}
    properties[model_contract.META_PRECISION] = PRECISION
    properties[model_contract.META_DESCRIPTION] = properties.get(
        model_contract.META_DESCRIPTION, ""
    ).replace("fp32 weights", "int8 weights and activations, static quantisation")
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, properties)
    onnx.save(model, str(out_path))


def rank_correlation(first: np.ndarray, second: np.ndarray) -> float:
    """Spearman's rank correlation (average ranks for ties)."""
    first_ranks, second_ranks = _ranks(np.ravel(first)), _ranks(np.ravel(second))
    if first_ranks.std() == 0 or second_ranks.std() == 0:
        return float("nan")
    return float(np.corrcoef(first_ranks, second_ranks)[0, 1])


def _ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(len(values))
    # Tied values share their average rank.
    unique, inverse = np.unique(values, return_inverse=True)
    sums = np.bincount(inverse, weights=ranks)
    return (sums / np.bincount(inverse))[inverse] if len(unique) < len(values) else ranks
