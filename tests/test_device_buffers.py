"""IO binding with reused device buffers (the CUDA path of QualityModel), checked on the CPU
device, where the same binding code runs without a GPU."""

from __future__ import annotations

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
