"""IO binding with reused device buffers (the CUDA path of QualityModel), checked on the CPU
device, where the same binding code runs without a GPU."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import onnxruntime as ort

from fiqa_cli import model_contract as contract
from fiqa_cli.runtime.providers import CPU
from fiqa_cli.runtime.quality_model import DeviceBufferRunner


def test_bound_buffers_give_the_plain_runs_scores(random_onnx_model: Path) -> None:
    session = ort.InferenceSession(str(random_onnx_model), providers=[CPU])
    runner = DeviceBufferRunner(session, "cpu")
    rng = np.random.default_rng(0)
    # Repeated sizes reuse their buffers; six sizes evict the oldest bindings on the way.
    for size in (5, 3, 5, 1, 2, 4, 6, 5, 3):
        batch = rng.uniform(-1, 1, (size, 3, 112, 112)).astype(np.float32)
        plain = session.run([contract.QUALITY_OUTPUT], {contract.INPUT_NAME: batch})[0]
        bound = runner.run(batch)
        assert bound.shape == (size, 1)
        np.testing.assert_allclose(bound, plain, rtol=1e-5, atol=1e-6)


def test_threads_sharing_the_bound_buffers_each_get_their_own_scores(
    random_onnx_model: Path,
) -> None:
    """The Python API lets threads share one model: a batch written into the shared input
    buffer while another thread's batch runs would score the wrong crops."""
    session = ort.InferenceSession(str(random_onnx_model), providers=[CPU])
    runner = DeviceBufferRunner(session, "cpu")
    rng = np.random.default_rng(1)
    batches = [rng.uniform(-1, 1, (2, 3, 112, 112)).astype(np.float32) for _ in range(4)]
    expected = [
        session.run([contract.QUALITY_OUTPUT], {contract.INPUT_NAME: b})[0] for b in batches
    ]
    wrong: list[int] = []

    def run(index: int) -> None:
        for _ in range(40):
            if not np.allclose(runner.run(batches[index]), expected[index], rtol=1e-5, atol=1e-6):
                wrong.append(index)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(batches))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not wrong, f"{len(wrong)} of {40 * len(batches)} runs scored another thread's batch"
