"""Which onnxruntime providers each --device asks for, and the session options of the
pipeline's concurrent sessions."""

from __future__ import annotations

import onnxruntime as ort
import pytest

from fiqa_cli import providers
from fiqa_cli.providers import CPU, CUDA, DeviceError, select_providers, shared_cpu_options


def test_cuda_gets_its_options_and_cpu_stays_behind_it(monkeypatch) -> None:
    monkeypatch.setattr(providers.ort, "get_available_providers", lambda: [CUDA, CPU])
    chosen = select_providers("auto", {"device_id": "1"})
    assert chosen == [(CUDA, {"device_id": "1"}), CPU]
    assert select_providers("cuda") == [(CUDA, {}), CPU]
    assert select_providers("cpu", {"device_id": "1"}) == [CPU]


def test_cuda_without_cuda_names_the_fix(monkeypatch) -> None:
    monkeypatch.setattr(providers.ort, "get_available_providers", lambda: [CPU])
    assert select_providers("auto") == [CPU]
    with pytest.raises(DeviceError, match="onnxruntime-gpu"):
        select_providers("cuda")


def test_shared_cpu_options_cap_threads_and_do_not_spin() -> None:
    options = shared_cpu_options(threads=1)
    assert options.intra_op_num_threads == 1 and options.inter_op_num_threads == 1
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert shared_cpu_options().intra_op_num_threads == ort.SessionOptions().intra_op_num_threads
