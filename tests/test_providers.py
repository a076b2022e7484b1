"""Which onnxruntime providers each --device asks for, and the session options of the
pipeline's concurrent sessions."""

from __future__ import annotations

import onnxruntime as ort
import pytest

from fiqa_cli.runtime import providers
from fiqa_cli.runtime.providers import (
    CPU,
    CUDA,
    TENSORRT,
    DeviceError,
    detector_providers,
    fallback_notice,
    select_providers,
    shared_cpu_options,
    tensorrt_defaults,
)


def test_cuda_gets_its_options_and_cpu_stays_behind_it(monkeypatch) -> None:
    monkeypatch.setattr(providers.ort, "get_available_providers", lambda: [CUDA, CPU])
    chosen = select_providers("auto", {"device_id": "1"})
    assert chosen == [(CUDA, {"use_tf32": "0", "device_id": "1"}), CPU]
    # Full fp32 unless asked: a photo gets the CPU's score on a GPU too (issue 34).
    assert select_providers("cuda") == [(CUDA, {"use_tf32": "0"}), CPU]
    assert select_providers("cuda", {"use_tf32": "1"}) == [(CUDA, {"use_tf32": "1"}), CPU]
    assert select_providers("cpu", {"device_id": "1"}) == [CPU]


def test_cuda_without_cuda_names_the_fix(monkeypatch) -> None:
    monkeypatch.setattr(providers.ort, "get_available_providers", lambda: [CPU])
    assert select_providers("auto") == [CPU]
    with pytest.raises(DeviceError, match="onnxruntime-gpu"):
        select_providers("cuda")


def test_tensorrt_runs_first_with_cuda_and_cpu_behind_it(monkeypatch) -> None:
    monkeypatch.setattr(providers.ort, "get_available_providers", lambda: [TENSORRT, CUDA, CPU])
    chosen = select_providers("tensorrt", {"device_id": "1"}, {"trt_fp16_enable": "True"})
    cuda = {"use_tf32": "0", "device_id": "1"}
    assert chosen == [(TENSORRT, {"trt_fp16_enable": "True"}), (CUDA, cuda), CPU]
    # auto never picks TensorRT: its engines take minutes to build on first use.
    assert select_providers("auto") == [(CUDA, {"use_tf32": "0"}), CPU]
    # Detectors see a new input shape per photo size: they stay on CUDA, with cuDNN's
    # heuristic instead of an exhaustive search per shape.
    heuristic = {"cudnn_conv_algo_search": "HEURISTIC"}
    assert detector_providers(chosen) == [(CUDA, {**heuristic, **cuda}), CPU]
    asked = select_providers("cuda", {"cudnn_conv_algo_search": "EXHAUSTIVE"})
    assert detector_providers(asked)[0][1]["cudnn_conv_algo_search"] == "EXHAUSTIVE"


def test_tensorrt_missing_is_an_error_before_and_after_the_session(monkeypatch) -> None:
    monkeypatch.setattr(providers.ort, "get_available_providers", lambda: [CUDA, CPU])
    with pytest.raises(DeviceError, match="TensorRT"):
        select_providers("tensorrt")
    # Listed but not loaded (libnvinfer missing): onnxruntime quietly falls back to CUDA.
    with pytest.raises(DeviceError, match=TENSORRT):
        fallback_notice("tensorrt", [CUDA, CPU])
    with pytest.raises(DeviceError, match="--device tensorrt .* could not load CUDA"):
        fallback_notice("tensorrt", [TENSORRT, CPU])
    assert fallback_notice("tensorrt", [TENSORRT, CUDA, CPU]) is None


def test_cpu_fallback_is_said_only_where_a_gpu_build_could_not_load(monkeypatch) -> None:
    monkeypatch.setattr(providers.ort, "get_available_providers", lambda: [CPU])
    assert fallback_notice("auto", [CPU]) is None  # a CPU-only install runs on the CPU, quietly
    monkeypatch.setattr(providers.ort, "get_available_providers", lambda: [CUDA, CPU])
    assert fallback_notice("auto", [CPU]) == providers.CPU_FALLBACK_NOTICE
    assert fallback_notice("auto", [CUDA, CPU]) is None
    with pytest.raises(DeviceError, match="could not load CUDA"):
        fallback_notice("cuda", [CPU])


def test_tensorrt_profile_spans_one_crop_to_a_full_batch(tmp_path) -> None:
    options = tensorrt_defaults(32, tmp_path)
    assert options["trt_profile_min_shapes"] == "input:1x3x112x112"
    assert options["trt_profile_opt_shapes"] == options["trt_profile_max_shapes"]
    assert options["trt_profile_max_shapes"] == "input:32x3x112x112"
    assert options["trt_engine_cache_enable"] == "True"
    assert options["trt_engine_cache_path"] == str(tmp_path)


def test_shared_cpu_options_cap_threads_and_do_not_spin() -> None:
    options = shared_cpu_options(threads=1)
    assert options.intra_op_num_threads == 1 and options.inter_op_num_threads == 1
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert shared_cpu_options().intra_op_num_threads == ort.SessionOptions().intra_op_num_threads
