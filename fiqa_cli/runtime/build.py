"""Typed builders of what the commands run: the quality model, the detector and their batch
size, from the choices a command was given. Every command, `fiqa_cli.evaluation` and the Ray
actors call these instead of wiring providers, sessions and threads themselves."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fiqa_cli.choices import AUTO_DETECTOR, CPU_BATCH_SIZE, CUDA_BATCH_SIZE, TENSORRT_DEVICE
from fiqa_cli.errors import ModelFileError
from fiqa_cli.paths import cache_dir, default_model_path, face_mesh_model_path
from fiqa_cli.runtime.detect import Detector, create_optional_detector
from fiqa_cli.runtime.face_mesh import FaceMesh
from fiqa_cli.runtime.providers import (
    CPU,
    CUDA,
    Providers,
    detector_providers,
    fallback_notice,
    select_providers,
    shared_cpu_options,
    tensorrt_defaults,
    usable_cpus,
)
from fiqa_cli.runtime.quality_model import QualityModel


@dataclass(frozen=True)
class Scoring:
    """A quality model and a detector (None: the inputs are aligned crops), ready to run, and
    the face mesh the measures read (None without measures)."""

    # Every session of the quality model: what the pipeline scores with.
    sessions: tuple[QualityModel, ...]
    detector: Detector | None
    batch_size: int
    face_mesh: FaceMesh | None = None

    @property
    def model(self) -> QualityModel:
        """The quality model (its first session): its path, calibration and providers."""
        return self.sessions[0]


def quality_model_path(model: Path | None) -> Path:
    """`--model` as given, else the embedded default model (an error naming the fix when the
    installation lacks it)."""
    if model is not None:
        return model
    path = default_model_path()
    if not path.is_file():
        raise ModelFileError(
            f"the default quality model is missing ({path}): reinstall fiqa (its package "
            "ships models/fiqa_default.onnx), or pass --model PATH / set FIQA_MODEL to an "
            "ONNX model written by `fiqa export`"
        )
    return path


def build_scoring(
    *,
    model: Path | None,
    detector: str,
    detector_model: Path | None,
    device: str,
    batch_size: int | None = None,
    workers: int = 1,
    cuda_options: dict[str, str] | None = None,
    tensorrt_options: dict[str, str] | None = None,
    notice: Callable[[str], None] = lambda message: None,
    inference_sessions: int | None = None,
    measures: bool = False,
) -> Scoring:
    """The model and detector for `device` (auto|cpu|cuda|tensorrt), threaded for `workers`
    decode/detect threads beside inference; `notice` hears a CPU fallback and what `auto`
    chose. Unset `batch_size` means CPU_BATCH_SIZE or CUDA_BATCH_SIZE by where the model runs.
    `inference_sessions` sessions of the quality model score batches side by side, each with
    an equal share of the CPUs' intra-op threads (None: `default_inference_sessions`).
    `measures` adds the face mesh the component measures read."""
    if inference_sessions is not None and inference_sessions < 1:
        raise ValueError(f"inference_sessions must be at least 1, not {inference_sessions}")
    tensorrt_options = dict(tensorrt_options or {})
    if device == TENSORRT_DEVICE:
        # TensorRT's shape profile is fixed when the session starts, so the batch size is too.
        batch_size = batch_size or CUDA_BATCH_SIZE
        tensorrt_options = {
            **tensorrt_defaults(batch_size, cache_dir() / "tensorrt"),
            **tensorrt_options,
        }
    providers = select_providers(device, cuda_options, tensorrt_options)
    if inference_sessions is None:
        inference_sessions = default_inference_sessions(providers, usable_cpus(), workers)
    # Decode/detect workers run beside inference: no session may spin on idle cores.
    shared = workers > 1
    threads = None if inference_sessions == 1 else max(1, usable_cpus() // inference_sessions)
    sessions = tuple(
        build_quality_model(model, providers, shared=shared or threads is not None, threads=threads)
        for _ in range(inference_sessions)
    )
    quality_model = sessions[0]
    cpu_notice = fallback_notice(device, quality_model.active_providers)
    # Each worker's detector call gets one core: MTCNN's many small operators and SCRFD's
    # pre/post-processing use a core each far better than one call spread over all cores.
    # Inference gets every core for its batches.
    face_detector = build_detector(
        detector, detector_model, detector_providers(providers), threads=1 if shared else None
    )
    # The mesh runs where the detector does, in the same workers: one thread each likewise.
    face_mesh = (
        build_face_mesh(detector_providers(providers), threads=1 if shared else None)
        if measures
        else None
    )
    if cpu_notice:
        notice(cpu_notice)
    if face_detector is not None and detector == AUTO_DETECTOR:
        notice(f"detector: {face_detector.name} ({face_detector.source})")
    if batch_size is None:
        batch_size = default_batch_size(quality_model)
    return Scoring(sessions, face_detector, batch_size, face_mesh)


def build_quality_model(
    model: Path | None,
    providers: Providers | None = None,
    *,
    shared: bool = False,
    threads: int | None = None,
) -> QualityModel:
    """The quality model `model` (None: the embedded default) on `providers` (default CPU).
    `shared`: its session shares the CPUs with others running at once (threads that do not
    spin), capped at `threads` intra-op threads when given."""
    options = shared_cpu_options(threads=threads) if shared else None
    return QualityModel(quality_model_path(model), providers or [CPU], options)


def default_inference_sessions(providers: Providers, cpus: int, workers: int) -> int:
    """Quality-model sessions where none are asked for: two on a CPU of two or more cores with
    inputs prepared by two or more workers, else one. There, two sessions of one thread each
    beat one of two threads on this project's 2-core CPU: 3-4% faster end to end, with and
    without measures, in each of 4 alternated rounds (docs/performance.md). A GPU keeps one
    session, and so does one worker: each input's rows are then written before the next input
    is read, where a second session would take a batch ahead."""
    return 2 if providers == [CPU] and cpus >= 2 and workers >= 2 else 1


def default_batch_size(model: QualityModel) -> int:
    """Crops per inference batch where none is asked for: CUDA_BATCH_SIZE where the model
    runs on CUDA, else CPU_BATCH_SIZE."""
    return CUDA_BATCH_SIZE if CUDA in model.active_providers else CPU_BATCH_SIZE


def build_detector(
    detector: str,
    detector_model: Path | None = None,
    providers: Providers | None = None,
    *,
    threads: int | None = None,
) -> Detector | None:
    """The detector `detector` (auto, a name of DETECTOR_KINDS, or none: None), its sessions
    capped at `threads` non-spinning intra-op threads when given (several run side by side)."""
    options = shared_cpu_options(threads=threads) if threads is not None else None
    return create_optional_detector(detector, detector_model, providers or [CPU], options)


def build_face_mesh(providers: Providers | None = None, *, threads: int | None = None) -> FaceMesh:
    """The shipped face mesh model on `providers` (default CPU), capped at `threads`
    non-spinning intra-op threads when given (several workers share it)."""
    options = shared_cpu_options(threads=threads) if threads is not None else None
    return FaceMesh(face_mesh_model_path(), providers or [CPU], options)
