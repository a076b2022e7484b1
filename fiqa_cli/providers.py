"""onnxruntime execution providers for `--device auto|cpu|cuda`, and session threading."""

from __future__ import annotations

import os

import onnxruntime as ort

from fiqa_cli.options import DEVICES

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
# Installing insightface next to onnxruntime-gpu leaves CPU onnxruntime's files on top.
CUDA_FIX = "pip install --force-reinstall --no-deps onnxruntime-gpu"
CPU_FALLBACK_NOTICE = "CUDA is not usable with this onnxruntime; running on CPU"

# What onnxruntime takes as `providers`: names, or (name, options) pairs.
Providers = list[str | tuple[str, dict[str, str]]]


class DeviceError(Exception):
    """The requested device cannot be used; the message carries the fix."""


def cuda_missing_message(detail: str) -> str:
    return f"--device cuda was requested but {detail}. Fix: {CUDA_FIX}"


def select_providers(device: str, cuda_options: dict[str, str] | None = None) -> Providers:
    """Providers to ask onnxruntime for; `cuda` fails early when onnxruntime lacks CUDA.
    `cuda_options` are CUDA execution provider options (device_id, gpu_mem_limit,
    cudnn_conv_algo_search...), passed as given for onnxruntime to check."""
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}; expected one of {', '.join(DEVICES)}")
    available = ort.get_available_providers()
    if device == "cpu":
        return [CPU]
    if CUDA in available:
        return [(CUDA, dict(cuda_options or {})), CPU]
    if device == "cuda":
        raise DeviceError(
            cuda_missing_message(
                f"onnxruntime {ort.__version__} offers no {CUDA} "
                f"(available: {', '.join(available)})"
            )
        )
    return [CPU]


def fallback_notice(device: str, active_providers: list[str]) -> str | None:
    """What to say once a session exists: a CPU fallback under `auto`, an error under `cuda`.

    onnxruntime may list CUDA yet fall back to CPU when the CUDA libraries do not load, so
    only the providers a session actually got are trusted."""
    if device == "cpu" or CUDA in active_providers:
        return None
    if device == "cuda":
        raise DeviceError(
            cuda_missing_message(f"the session could not load {CUDA} (CUDA/cuDNN libraries?)")
        )
    return CPU_FALLBACK_NOTICE


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
