"""Write a backbone as an ONNX quality model that follows `fiqa_cli.model_contract`.

The graph takes `input` (float32 Nx3x112x112 RGB, (pixel / 255 - 0.5) / 0.5) and returns
`embedding` (Nx512, not normalised) and `quality` (Nx1), with a dynamic batch axis. The
preprocessing and provenance travel inside the file as metadata properties so that a scorer
needs nothing but the model to use it correctly.
"""

from __future__ import annotations

import copy
import io
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from fiqa_cli import __version__, model_contract
from fiqa_cli.errors import FiqaError
from fiqa_cli.export import DEFAULT_OPSET
from fiqa_cli.export.checkpoint import load_backbone
from fiqa_cli.export.crop_folder import read_aligned_crops
from fiqa_cli.export.quantize import (
    MIN_RANK_CORRELATION,
    PRECISION,
    calibration_inputs,
    quantize,
    rank_correlation,
)
from fiqa_cli.runtime.model_input import crops_to_input
from fiqa_cli.runtime.safe_write import UnsafeTargetError, check_replaceable, replacing

# Largest relative output difference (see `relative_difference`) an export may show against
# the float32 torch model. Half-precision weights and activations cost about three digits.
PARITY_TOLERANCE = {"fp32": 1e-4, "fp16": 1e-2}
RANDOM_PARITY_BATCH = 8
MAX_PARITY_IMAGES = 32
PARITY_SEED = 0
BATCH_AXIS = "batch"
# Tracing with a batch of 2 keeps the exporter from folding the batch size into the graph.
_TRACE_BATCH = 2


class Float16Backbone(nn.Module):
    """Runs a half-precision copy of a backbone behind float32 inputs and outputs."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = copy.deepcopy(backbone).half()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedding, quality = self.backbone(x.half())
        return embedding.float(), quality.float()


def export_model(
    model: nn.Module,
    out_path: str | os.PathLike[str],
    *,
    architecture: str,
    source_sha256: str = "",
    cr_formula: str = model_contract.CR_FORMULA_PAPER,
    fp16: bool = False,
    opset: int = DEFAULT_OPSET,
    data_terms: str = "",
) -> Path:
    """Export `model` (a backbone returning (embedding, quality)) to `out_path` and return it."""
    out_path = Path(out_path)
    model = model.eval()
    graph_module = Float16Backbone(model).eval() if fp16 else model
    example = torch.zeros(_TRACE_BATCH, 3, model_contract.INPUT_SIZE, model_contract.INPUT_SIZE)
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        # The TorchScript exporter is deprecated, but the dynamo one needs onnxscript, which
        # is not a dependency; this plain conv net traces exactly.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            graph_module,
            (example,),
            buffer,
            input_names=[model_contract.INPUT_NAME],
            output_names=[model_contract.EMBEDDING_OUTPUT, model_contract.QUALITY_OUTPUT],
            dynamic_axes={
                name: {0: BATCH_AXIS}
                for name in (
                    model_contract.INPUT_NAME,
                    model_contract.EMBEDDING_OUTPUT,
                    model_contract.QUALITY_OUTPUT,
                )
            },
            opset_version=opset,
            dynamo=False,
        )
    del graph_module
    onnx_model = onnx.load_from_string(buffer.getvalue())
    del buffer
    embedding_size = onnx_model.graph.output[0].type.tensor_type.shape.dim[1].dim_value
    metadata = model_metadata(
        architecture=architecture,
        embedding_size=embedding_size,
        source_sha256=source_sha256,
        cr_formula=cr_formula,
        fp16=fp16,
        data_terms=data_terms,
    )
    onnx.helper.set_model_props(onnx_model, metadata)
    onnx_model.doc_string = metadata[model_contract.META_DESCRIPTION]
    out_path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(onnx_model, out_path)
    del onnx_model
    # Checking the file rather than the proto spares a second in-memory copy of the weights.
    onnx.checker.check_model(str(out_path))
    return out_path


def model_metadata(
    *,
    architecture: str,
    embedding_size: int,
    source_sha256: str,
    cr_formula: str,
    fp16: bool,
    data_terms: str = "",
) -> dict[str, str]:
    """The metadata properties of an exported model; lists are JSON, numbers decimal strings.
    `data_terms` (the terms of the data it was trained on) is left out when not given."""
    precision = "fp16" if fp16 else "fp32"
    terms = {model_contract.META_DATA_TERMS: data_terms} if data_terms else {}
    return {
        **terms,
        model_contract.META_ARCHITECTURE: architecture,
        model_contract.META_EMBEDDING_SIZE: str(embedding_size),
        model_contract.META_INPUT_SIZE: str(model_contract.INPUT_SIZE),
        model_contract.META_COLOR_ORDER: model_contract.COLOR_ORDER,
        model_contract.META_MEAN: json.dumps(list(model_contract.MEAN)),
        model_contract.META_STD: json.dumps(list(model_contract.STD)),
        model_contract.META_PIXEL_SCALE: repr(model_contract.PIXEL_SCALE),
        model_contract.META_ALIGNMENT: model_contract.ALIGNMENT_TEMPLATE,
        model_contract.META_CR_FORMULA: cr_formula,
        model_contract.META_SOURCE_SHA256: source_sha256,
        model_contract.META_VERSION: __version__,
        model_contract.META_PRECISION: precision,
        model_contract.META_DESCRIPTION: (
            f"CR-FIQA face image quality model ({architecture}, {precision} weights). "
            f"Outputs '{model_contract.QUALITY_OUTPUT}' (higher means more useful for "
            f"recognition) and the un-normalised '{model_contract.EMBEDDING_OUTPUT}'."
        ),
    }


class ExportError(FiqaError):
    """The export could not produce a model that reproduces the checkpoint; says why."""


@dataclass(frozen=True)
class Parity:
    """How far the ONNX outputs stray from the torch model's on the same inputs."""

    embedding: float
    quality: float
    tolerance: float | None  # None: judged by rank correlation alone (int8)
    inputs: str  # what was fed, in words
    rank_correlation: float | None = None  # Spearman of the qualities, int8 only

    @property
    def passed(self) -> bool:
        if self.tolerance is None:
            return (self.rank_correlation or 0.0) >= MIN_RANK_CORRELATION
        return max(self.embedding, self.quality) <= self.tolerance

    def summary(self) -> str:
        differences = (
            f"parity on {self.inputs}: max relative difference embedding {self.embedding:.2e}, "
            f"quality {self.quality:.2e}"
        )
        if self.tolerance is None:
            return (
                f"{differences}; quality rank correlation {self.rank_correlation:.4f} "
                f"(at least {MIN_RANK_CORRELATION})"
            )
        return f"{differences} (tolerance {self.tolerance:.0e})"


@dataclass(frozen=True)
class ExportResult:
    out_path: Path
    architecture: str
    precision: str
    source_sha256: str
    parity: Parity | None  # None when the check was skipped


def export_checkpoint(
    checkpoint_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str] | None = None,
    *,
    arch: str | None = None,
    trust: bool = False,
    fp16: bool = False,
    int8_crops: str | os.PathLike[str] | None = None,
    parity: bool = True,
    parity_images: str | os.PathLike[str] | None = None,
    opset: int = DEFAULT_OPSET,
    data_terms: str = "",
) -> ExportResult:
    """Export a checkpoint to ONNX (default: beside it, suffix .onnx) and verify the result.

    With `int8_crops` (a folder of aligned crops) the model is quantised to int8, calibrated on
    those crops, and must order the `parity_images` crops as the torch model does.
    The model only appears at `out_path` once it has passed the parity check, so a failed
    export never leaves a wrong model where a scorer would pick it up.
    """
    checkpoint_path = Path(checkpoint_path)
    out_path = Path(out_path) if out_path is not None else checkpoint_path.with_suffix(".onnx")
    if out_path.resolve() == checkpoint_path.resolve():
        raise ExportError(f"the output path {out_path} is the checkpoint itself; pass --out")
    try:
        check_replaceable(out_path)
    except UnsafeTargetError as error:
        raise ExportError(f"--out {error}") from None
    precision = _precision(fp16, int8_crops, parity, parity_images)
    # Read before the slow export: a bad crop folder is refused at once.
    calibration = calibration_inputs(Path(int8_crops)) if int8_crops is not None else None
    parity_input = _parity_input(parity_images) if parity else None
    backbone = load_backbone(checkpoint_path, arch=arch, trust=trust)
    # Written in a private folder beside --out (a planted `OUT.partial` link is never
    # followed) and renamed over it once it has passed its checks.
    with replacing(out_path) as staging_path:
        export_model(
            backbone.model,
            staging_path,
            architecture=backbone.architecture,
            source_sha256=backbone.source_sha256,
            cr_formula=backbone.cr_formula,
            fp16=fp16,
            opset=opset,
            data_terms=data_terms,
        )
        if calibration is not None:
            quantize(staging_path, staging_path, calibration)
        parity_result = None
        if parity_input is not None:
            inputs, description = parity_input
            parity_result = measure_parity(
                backbone.model,
                staging_path,
                inputs,
                precision=precision,
                inputs_description=description,
            )
            if not parity_result.passed:
                raise ExportError(
                    "the ONNX model does not reproduce the checkpoint: "
                    f"{parity_result.summary()}; no model was written"
                )
    return ExportResult(
        out_path=out_path,
        architecture=backbone.architecture,
        precision=precision,
        source_sha256=backbone.source_sha256,
        parity=parity_result,
    )


def _precision(fp16: bool, int8_crops: object, parity: bool, parity_images: object) -> str:
    if int8_crops is None:
        return "fp16" if fp16 else "fp32"
    if fp16:
        raise ExportError("--int8 and --fp16 exclude each other")
    if not parity or parity_images is None:
        raise ExportError(
            "--int8 needs --parity-images: held-out aligned crops (not the calibration ones) on "
            "which the int8 model must order faces as the float32 model does"
        )
    return PRECISION


def measure_parity(
    model: nn.Module,
    onnx_path: Path,
    inputs: np.ndarray,
    *,
    precision: str = "fp32",
    inputs_description: str = "",
) -> Parity:
    """Run the float32 torch `model` and the ONNX model (CPU) on `inputs` and compare: by
    tolerance for fp32 and fp16, by the qualities' rank correlation for int8."""
    with torch.no_grad():
        reference = [output.numpy() for output in model.eval()(torch.from_numpy(inputs))]
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    candidate = session.run(
        [model_contract.EMBEDDING_OUTPUT, model_contract.QUALITY_OUTPUT],
        {model_contract.INPUT_NAME: inputs},
    )
    return Parity(
        embedding=relative_difference(reference[0], candidate[0]),
        quality=relative_difference(reference[1], candidate[1]),
        tolerance=PARITY_TOLERANCE.get(precision),
        inputs=inputs_description or f"{len(inputs)} inputs",
        rank_correlation=(
            rank_correlation(reference[1], candidate[1]) if precision == PRECISION else None
        ),
    )


def relative_difference(reference: np.ndarray, candidate: np.ndarray) -> float:
    """max |reference - candidate| / max |reference|: the error on the output's own scale.

    Per-element ratios would blow up on outputs near zero, which matter no more than others.
    A shape mismatch or a non-finite value (e.g. float16 overflow) counts as infinitely far.
    """
    if reference.shape != candidate.shape:
        return float("inf")
    scale = float(np.abs(reference).max())
    error = float(np.abs(reference.astype(np.float64) - candidate).max())
    difference = error / scale if scale > 0 else error
    return difference if np.isfinite(difference) else float("inf")


def _parity_input(images_dir: str | os.PathLike[str] | None) -> tuple[np.ndarray, str]:
    if images_dir is None:
        size = model_contract.INPUT_SIZE
        generator = np.random.default_rng(PARITY_SEED)
        batch = generator.uniform(-1.0, 1.0, (RANDOM_PARITY_BATCH, 3, size, size))
        return batch.astype(np.float32), f"{RANDOM_PARITY_BATCH} seeded random inputs"
    crops = read_aligned_crops(
        Path(images_dir),
        option="--parity-images",
        limit=MAX_PARITY_IMAGES,
        minimum=1,
        error=ExportError,
    )
    return crops_to_input(crops), f"{len(crops)} aligned crops from {images_dir}"
