"""onnxruntime execution providers for `--device auto|cpu|cuda|tensorrt`, and session
threading."""

from __future__ import annotations

import os
from pathlib import Path

import onnxruntime as ort

from fiqa_cli import model_contract as contract
from fiqa_cli.choices import CPU, CUDA, CUDA_FIX, DEVICES, TENSORRT, TENSORRT_DEVICE, TENSORRT_FIX
from fiqa_cli.errors import FiqaError, ModelFileError

CPU_FALLBACK_NOTICE = (
    "CUDA is offered by this onnxruntime but not usable (CUDA/cuDNN libraries?); running on CPU"
)

# What onnxruntime takes as `providers`: names, or (name, options) pairs.
Providers = list[str | tuple[str, dict[str, str]]]

# onnxruntime's CUDA provider multiplies in TF32 by default. On an H200 that moved qualities
# up to 0.011 from the CPU's (boxes up to 0.1 px), against 4e-5 with use_tf32=0 (issue 34): a
# photo must get one score whatever the device, so full fp32 is the default and TF32 an
# opt-in (--cuda-option use_tf32=1).
CUDA_DEFAULTS = {"use_tf32": "0"}
# Detectors see a new input shape with almost every photo, and cuDNN's default exhaustive
# algorithm search runs again for each; on the H200, 300 LFW photos took 11.3-13.8 s with it
# and 9.7 s with the heuristic (issue 34). The quality model's batches keep one shape, where
# the exhaustive search is paid once.
DETECTOR_CUDA_DEFAULTS = {"cudnn_conv_algo_search": "HEURISTIC"}


class DeviceError(FiqaError):
    """The requested device cannot be used; the message carries the fix."""


def cuda_missing_message(detail: str, device: str = "cuda") -> str:
    return f"--device {device} was requested but {detail}. Fix: {CUDA_FIX}"


def tensorrt_missing_message(detail: str) -> str:
    return f"--device tensorrt was requested but {detail}. Fix: {TENSORRT_FIX}"


def select_providers(
    device: str,
    cuda_options: dict[str, str] | None = None,
    tensorrt_options: dict[str, str] | None = None,
) -> Providers:
    """Providers to ask onnxruntime for; `cuda` and `tensorrt` fail early when onnxruntime
    lacks them. Provider options (CUDA: device_id, gpu_mem_limit, cudnn_conv_algo_search...;
    TensorRT: trt_fp16_enable, trt_engine_cache_path...) are passed as given for onnxruntime
    to check, over CUDA_DEFAULTS. TensorRT runs what it can and leaves the rest to CUDA, then
    CPU."""
    if device not in (*DEVICES, TENSORRT_DEVICE):
        expected = ", ".join((*DEVICES, TENSORRT_DEVICE))
        raise ValueError(f"unknown device {device!r}; expected one of {expected}")
    available = ort.get_available_providers()
    if device == "cpu":
        return [CPU]
    cuda = (CUDA, {**CUDA_DEFAULTS, **(cuda_options or {})})
    if device == TENSORRT_DEVICE:
        if TENSORRT not in available:
            raise DeviceError(
                tensorrt_missing_message(
                    f"onnxruntime {ort.__version__} offers no {TENSORRT} "
                    f"(available: {', '.join(available)})"
                )
            )
        return [(TENSORRT, dict(tensorrt_options or {})), cuda, CPU]
    if CUDA in available:
        return [cuda, CPU]
    if device == "cuda":
        raise DeviceError(
            cuda_missing_message(
                f"onnxruntime {ort.__version__} offers no {CUDA} "
                f"(available: {', '.join(available)})"
            )
        )
    return [CPU]


def tensorrt_defaults(batch_size: int, cache_dir: Path) -> dict[str, str]:
    """TensorRT options for a quality model run `batch_size` crops at a time.

    TensorRT builds an engine for a range of input shapes, which takes minutes for a large
    backbone: one profile from a single crop up to a full batch covers every batch of the run,
    and engines cached on disk are built once per model and GPU, not once per run."""

    def shape(batch: int) -> str:
        size = contract.INPUT_SIZE
        return f"{contract.INPUT_NAME}:{batch}x3x{size}x{size}"

    return {
        "trt_engine_cache_enable": "True",
        "trt_engine_cache_path": str(cache_dir),
        "trt_profile_min_shapes": shape(1),
        "trt_profile_opt_shapes": shape(batch_size),
        "trt_profile_max_shapes": shape(batch_size),
    }


def detector_providers(providers: Providers) -> Providers:
    """The providers for a model whose input shape changes from call to call (detectors):
    without TensorRT, which would build an engine for each new shape, and CUDA with
    DETECTOR_CUDA_DEFAULTS under the options given."""
    return [
        (CUDA, {**DETECTOR_CUDA_DEFAULTS, **p[1]}) if not isinstance(p, str) and p[0] == CUDA else p
        for p in providers
        if (p if isinstance(p, str) else p[0]) != TENSORRT
    ]


def fallback_notice(device: str, active_providers: list[str]) -> str | None:
    """What to say once a session exists: a CPU fallback under `auto` when this onnxruntime
    offers CUDA (a GPU build whose libraries did not load), an error under `cuda` or
    `tensorrt`. A CPU-only onnxruntime under `auto` runs on the CPU as asked, without a word.

    onnxruntime may list a provider yet fall back to the next one when its libraries do not
    load, so only the providers a session actually got are trusted."""
    if device == TENSORRT_DEVICE and TENSORRT not in active_providers:
        raise DeviceError(tensorrt_missing_message(f"the session could not load {TENSORRT}"))
    if device == "cpu" or CUDA in active_providers:
        return None
    if device == "auto" and CUDA not in ort.get_available_providers():
        return None
    if device in ("cuda", TENSORRT_DEVICE):
        raise DeviceError(
            cuda_missing_message(
                f"the session could not load {CUDA} (CUDA/cuDNN libraries?)", device
            )
        )
    return CPU_FALLBACK_NOTICE


def open_session(
    path: Path,
    providers: Providers,
    options: ort.SessionOptions | None = None,
    *,
    expected: str = "",
    error: type[ModelFileError] = ModelFileError,
) -> ort.InferenceSession:
    """An onnxruntime session of the model file `path`, for every model fiqa runs.

    A missing file, or one onnxruntime cannot load (it raises its own exception types,
    InvalidProtobuf among them), is an `error` naming the file and, when given, what was
    `expected` of it."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: model file not found")
    try:
        return ort.InferenceSession(str(path), options, providers=providers)
    except Exception as failure:
        text = str(failure).strip()
        first_line = text.splitlines()[0] if text else type(failure).__name__
        hint = f"; {expected}" if expected else ""
        raise error(f"{path}: not a loadable ONNX model ({first_line}){hint}") from None


def usable_cpus() -> int:
    """CPUs this process may run on (a container's or job's share, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def shared_cpu_options(threads: int | None = None) -> ort.SessionOptions:
    """Options for a session that shares the CPUs with others running at the same time, over
    a long run.

    `threads` caps its intra-op pool (None: onnxruntime's default, one per core). Its threads
    do not spin while waiting for work, as they do by default: spinning pools of concurrent
    sessions burn the cores that the other sessions need.
    """
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # A memory pattern is planned and kept per input shape: MTCNN's pyramid and each run's
    # last, smaller batch bring new shapes, and peak memory crept up over long runs. Without
    # it the default model ran as fast on this 2-core CPU (139 vs 135 crops/s at batch 16).
    options.enable_mem_pattern = False
    return options
