"""One onnxruntime session of a quality model, fed as its own metadata says.

A model written by `fiqa export` carries its preprocessing (input size, colour order, pixel
scale, mean, std) as metadata properties; the contract's values stand in for any that a
model lacks. The graph must have the contract's input and quality output.
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from fiqa_cli import model_contract as contract
from fiqa_cli.errors import ModelFileError
from fiqa_cli.runtime.calibration import Calibration, CalibrationError, calibration_of
from fiqa_cli.runtime.model_input import crops_to_input
from fiqa_cli.runtime.providers import CUDA, Providers, open_session

_EXPECTED = (
    f"expected an ONNX quality model written by `fiqa export`: input '{contract.INPUT_NAME}' "
    f"(float32 Nx3x{contract.INPUT_SIZE}x{contract.INPUT_SIZE}) and output "
    f"'{contract.QUALITY_OUTPUT}' (Nx1)"
)


# Input sizes a face crop model can sensibly take; the contract's is 112.
_INPUT_SIZES = range(16, 1025)
_FLOAT_OUTPUTS = ("tensor(float)", "tensor(double)", "tensor(float16)")
# Crops in the blank batch run at load when the graph leaves the batch free: more than one, so
# that a model giving one value per batch instead of per crop is caught.
_PROBE_BATCH = 2


class ModelError(ModelFileError):
    """The model file is missing, not ONNX, or does not follow the model contract."""


class QualityModel:
    """Maps aligned 112x112 BGR face crops to the model's raw quality scores.

    The whole contract (graph input and output, every preprocessing property, one quality per
    crop) is checked here, when the model is loaded, so that `score`, `doctor`, `evaluate` and
    `ray-score` refuse a bad model at once with its reason instead of failing on the first
    batch."""

    def __init__(self, path: Path, providers: Providers, options: ort.SessionOptions | None = None):
        self.path = Path(path)
        self._session = open_session(
            self.path, providers, options, expected=_EXPECTED, error=ModelError
        )
        self._check_graph()
        # On a GPU, batches go through device buffers bound once per batch size.
        self._device_runner = None
        if CUDA in self._session.get_providers():
            cuda_options = self._session.get_provider_options().get(CUDA, {})
            device_id = int(cuda_options.get("device_id", 0))
            self._device_runner = DeviceBufferRunner(self._session, "cuda", device_id)
        metadata = self._session.get_modelmeta().custom_metadata_map
        self.input_size = _read_input_size(metadata, self.path)
        self.color_order = metadata.get(contract.META_COLOR_ORDER, contract.COLOR_ORDER)
        if self.color_order not in ("RGB", "BGR"):
            raise ModelError(f"{self.path}: unsupported colour order {self.color_order!r}")
        self.pixel_scale = _read_pixel_scale(metadata, self.path)
        self.mean = _read_triplet(metadata, contract.META_MEAN, contract.MEAN, self.path)
        self.std = _read_triplet(metadata, contract.META_STD, contract.STD, self.path)
        if not np.all(self.std != 0):
            raise ModelError(f"{self.path}: metadata {contract.META_STD} holds a zero")
        self.metadata = dict(metadata)
        self.calibration = _read_calibration(metadata, self.path)
        self._check_input_size()
        self._check_one_quality_per_crop()

    @property
    def active_providers(self) -> list[str]:
        return list(self._session.get_providers())

    def _check_graph(self) -> None:
        inputs = {node.name: node for node in self._session.get_inputs()}
        outputs = {node.name for node in self._session.get_outputs()}
        node = inputs.get(contract.INPUT_NAME)
        if node is None or contract.QUALITY_OUTPUT not in outputs:
            raise ModelError(
                f"{self.path}: {_EXPECTED}; found inputs {sorted(inputs)} and outputs "
                f"{sorted(outputs)}"
            )
        shape = node.shape
        fixed_dims = [dim if isinstance(dim, int) else None for dim in shape[1:]]
        if node.type != "tensor(float)" or len(shape) != 4 or fixed_dims[0] not in (3, None):
            raise ModelError(
                f"{self.path}: input '{node.name}' is {node.type} {shape}; {_EXPECTED}"
            )
        # A graph exported with a fixed batch size is run that many crops at a time.
        self._max_batch = shape[0] if isinstance(shape[0], int) and shape[0] > 0 else None
        self._fixed_sides = [dim for dim in shape[2:] if isinstance(dim, int)]
        quality = next(n for n in self._session.get_outputs() if n.name == contract.QUALITY_OUTPUT)
        per_crop = quality.shape[1:] if quality.shape else None
        # A batch dimension of its own the output may only have when the input has one too.
        fixed_batch = quality.shape and isinstance(quality.shape[0], int)
        if (
            per_crop is None
            or any(isinstance(dim, int) and dim != 1 for dim in per_crop)
            or (fixed_batch and quality.shape[0] != self._max_batch)
        ):
            raise ModelError(
                f"{self.path}: output '{contract.QUALITY_OUTPUT}' has shape {quality.shape} "
                f"for input shape {shape}; {_EXPECTED}"
            )
        if quality.type not in _FLOAT_OUTPUTS:
            raise ModelError(
                f"{self.path}: output '{contract.QUALITY_OUTPUT}' is {quality.type}, not "
                f"floating point; {_EXPECTED}"
            )

    def _check_input_size(self) -> None:
        if any(side != self.input_size for side in self._fixed_sides):
            raise ModelError(
                f"{self.path}: its input takes {'x'.join(map(str, self._fixed_sides))} crops but "
                f"its metadata says {contract.META_INPUT_SIZE}={self.input_size}; {_EXPECTED}"
            )

    def _check_one_quality_per_crop(self) -> None:
        """One blank crop through the model: shapes a graph leaves symbolic are only known by
        running it."""
        batch = self._max_batch or _PROBE_BATCH
        blank = np.zeros((batch, 3, self.input_size, self.input_size), np.float32)
        try:
            output = np.asarray(self._run(blank))
        except Exception as error:  # onnxruntime raises its own types, not one base
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
            raise ModelError(f"{self.path}: fails on a blank crop ({first_line})") from None
        if not np.issubdtype(output.dtype, np.floating):
            raise ModelError(f"{self.path}: gives {output.dtype} quality values; {_EXPECTED}")
        if output.size != batch:
            raise ModelError(
                f"{self.path}: gives {output.size} quality values for {batch} crop(s) (output "
                f"shape {list(output.shape)}); {_EXPECTED}"
            )

    def preprocess(self, crops_bgr: list[np.ndarray]) -> np.ndarray:
        """Crops (HxWx3 uint8 BGR) to the float32 NCHW tensor the model expects."""
        return crops_to_input(
            crops_bgr,
            input_size=self.input_size,
            color_order=self.color_order,
            pixel_scale=self.pixel_scale,
            mean=self.mean,
            std=self.std,
        )

    def predict(self, crops_bgr: list[np.ndarray]) -> np.ndarray:
        """Raw quality score per crop (1-D float array)."""
        if not crops_bgr:
            return np.zeros(0, np.float32)
        tensor = self.preprocess(crops_bgr)
        step = self._max_batch or len(tensor)
        scores = []
        for start in range(0, len(tensor), step):
            chunk = tensor[start : start + step]
            # A fixed-batch graph takes exactly `step` crops: a short last batch is padded.
            padding = np.zeros((step - len(chunk), *chunk.shape[1:]), chunk.dtype)
            scores.append(self._run(np.concatenate([chunk, padding]))[: len(chunk)])
        return np.concatenate(scores).reshape(len(tensor), -1)[:, 0]

    def predict_batched(self, crops_bgr: list[np.ndarray], batch_size: int) -> np.ndarray:
        """`predict` of `crops_bgr`, `batch_size` crops at a time: the input tensor never holds
        more than one batch."""
        batches = [
            self.predict(crops_bgr[start : start + batch_size])
            for start in range(0, len(crops_bgr), batch_size)
        ]
        return np.concatenate(batches) if batches else np.zeros(0, np.float32)

    def _run(self, batch: np.ndarray) -> np.ndarray:
        if self._device_runner is not None:
            return self._device_runner.run(batch)
        return self._session.run([contract.QUALITY_OUTPUT], {contract.INPUT_NAME: batch})[0]


class DeviceBufferRunner:
    """Runs a session on buffers that live on its device and are reused for every batch of
    the same size (IO binding): each batch costs one copy into the device and one copy of the
    quality scores out; the embeddings never leave the device.

    `device` is onnxruntime's device name ("cuda", or "cpu", where it is the plain path with
    the same buffer handling, which is how the CPU-only tests check it).
    """

    # Batch sizes with bound buffers; a run has its batch size and one smaller last batch.
    _MAX_BOUND_SIZES = 4

    def __init__(self, session: ort.InferenceSession, device: str, device_id: int = 0):
        self._session = session
        self._device = device
        self._device_id = device_id
        self._bound: dict[int, _Binding] = {}
        # The bound buffers are shared: one batch at a time uses them (threads of the Python
        # API, or several callers of one QualityModel).
        self._lock = threading.Lock()

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Quality output (N x 1) for a float32 NCHW batch."""
        with self._lock:
            return self._run_bound(batch)

    def _run_bound(self, batch: np.ndarray) -> np.ndarray:
        if len(batch) not in self._bound:
            if len(self._bound) >= self._MAX_BOUND_SIZES:
                self._bound.pop(next(iter(self._bound)))
            self._bound[len(batch)] = self._bind(batch.shape)
        bound = self._bound[len(batch)]
        bound.buffers[0].update_inplace(np.ascontiguousarray(batch, dtype=np.float32))
        self._session.run_with_iobinding(bound.binding)
        return bound.binding.get_outputs()[bound.quality_index].numpy()

    def _bind(self, shape: tuple[int, ...]) -> _Binding:
        input_value = self._buffer(shape)
        binding = self._session.io_binding()
        binding.bind_ortvalue_input(contract.INPUT_NAME, input_value)
        buffers = [input_value]
        outputs = self._session.get_outputs()
        for node in outputs:
            output_shape = (shape[0], *node.shape[1:])
            if all(isinstance(dim, int) for dim in output_shape):
                buffers.append(self._buffer(output_shape))
                binding.bind_ortvalue_output(node.name, buffers[-1])
            else:  # a symbolic size: onnxruntime allocates it on the device at each run
                binding.bind_output(node.name, self._device, self._device_id)
        names = [node.name for node in outputs]
        return _Binding(binding, buffers, names.index(contract.QUALITY_OUTPUT))

    def _buffer(self, shape: tuple[int, ...]) -> ort.OrtValue:
        return ort.OrtValue.ortvalue_from_shape_and_type(
            list(shape), np.float32, self._device, self._device_id
        )


@dataclass
class _Binding:
    binding: ort.IOBinding
    buffers: list[ort.OrtValue]  # the input first; kept alive while bound
    quality_index: int


def _read_calibration(metadata: dict[str, str], path: Path) -> Calibration | None:
    try:
        return calibration_of(metadata)
    except CalibrationError as error:
        raise ModelError(
            f"{path}: metadata {contract.META_CALIBRATION} is not a usable calibration "
            f"({error}); run `fiqa calibrate` again"
        ) from None


def _read_input_size(metadata: dict[str, str], path: Path) -> int:
    text = metadata.get(contract.META_INPUT_SIZE, str(contract.INPUT_SIZE))
    try:
        size = int(text)
    except ValueError:
        size = None
    if size not in _INPUT_SIZES:
        raise ModelError(
            f"{path}: metadata {contract.META_INPUT_SIZE}={text!r} is not a crop side in pixels "
            f"({_INPUT_SIZES.start} to {_INPUT_SIZES.stop - 1})"
        )
    return size


def _read_pixel_scale(metadata: dict[str, str], path: Path) -> float:
    text = metadata.get(contract.META_PIXEL_SCALE, str(contract.PIXEL_SCALE))
    try:
        scale = float(text)
    except ValueError:
        scale = math.nan
    if not (math.isfinite(scale) and scale > 0):
        raise ModelError(
            f"{path}: metadata {contract.META_PIXEL_SCALE}={text!r} is not a positive number"
        )
    return scale


def _read_triplet(
    metadata: dict[str, str], key: str, default: tuple[float, ...], path: Path
) -> np.ndarray:
    if key not in metadata:
        return np.asarray(default, dtype=np.float32)
    try:
        values = np.asarray(json.loads(metadata[key]), dtype=np.float32).reshape(3)
        if not np.all(np.isfinite(values)):
            raise ValueError
    except (ValueError, TypeError, RecursionError):
        raise ModelError(
            f"{path}: metadata {key}={metadata[key]!r} is not a JSON list of 3 numbers"
        ) from None
    return values
