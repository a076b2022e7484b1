"""onnxruntime execution providers for `--device auto|cpu|cuda`."""

from __future__ import annotations

import onnxruntime as ort

from fiqa_cli.options import DEVICES

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
# Installing insightface next to onnxruntime-gpu leaves CPU onnxruntime's files on top.
CUDA_FIX = "pip install --force-reinstall --no-deps onnxruntime-gpu"
CPU_FALLBACK_NOTICE = "CUDA is not usable with this onnxruntime; running on CPU"


class DeviceError(Exception):
    """The requested device cannot be used; the message carries the fix."""


def cuda_missing_message(detail: str) -> str:
    return f"--device cuda was requested but {detail}. Fix: {CUDA_FIX}"


def select_providers(device: str) -> list[str]:
    """Providers to ask onnxruntime for; `cuda` fails early when onnxruntime lacks CUDA."""
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}; expected one of {', '.join(DEVICES)}")
    available = ort.get_available_providers()
    if device == "cpu":
        return [CPU]
    if CUDA in available:
        return [CUDA, CPU]
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
