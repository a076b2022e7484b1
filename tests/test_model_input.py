"""What a quality model is fed: expected tensors written out by hand, never through
`crops_to_input` itself, so that a preprocessing bug cannot cancel out on both sides.

The probe models are tiny hand-built ONNX graphs whose quality output is a fixed weighted sum
of every input value: any change of channel order, scale, mean or std changes it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from contract_input import by_hand_contract

from fiqa_cli import model_contract as contract
from fiqa_cli.runtime.model_input import crops_to_input
from fiqa_cli.runtime.providers import CPU
from fiqa_cli.runtime.quality_model import QualityModel

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

SIZE = contract.INPUT_SIZE


def crops(count: int, seed: int = 0) -> list[np.ndarray]:
    """Random BGR crops whose three channels differ, so that a channel swap shows."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8) for _ in range(count)]


def probe_weights() -> np.ndarray:
    return np.random.default_rng(7).normal(size=(1, 3, SIZE, SIZE)).astype(np.float32)


def probe_model(
    path: Path, metadata: dict[str, str] | None = None, batch: int | str = "batch"
) -> Path:
    """quality = sum(input * W) per sample; `batch` an int fixes the graph's batch size."""
    weights = numpy_helper.from_array(probe_weights(), "W")
    nodes = [
        helper.make_node("Mul", ["input", "W"], ["weighted"]),
        helper.make_node("ReduceSum", ["weighted", "axes"], ["summed"], keepdims=1),
        helper.make_node("Reshape", ["summed", "shape"], [contract.QUALITY_OUTPUT]),
    ]
    graph = helper.make_graph(
        nodes,
        "probe",
        [
            helper.make_tensor_value_info(
                contract.INPUT_NAME, TensorProto.FLOAT, [batch, 3, SIZE, SIZE]
            )
        ],
        [helper.make_tensor_value_info(contract.QUALITY_OUTPUT, TensorProto.FLOAT, [batch, 1])],
        [
            weights,
            numpy_helper.from_array(np.array([1, 2, 3], np.int64), "axes"),
            numpy_helper.from_array(np.array([-1, 1], np.int64), "shape"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, metadata or {})
    onnx.save(model, path)
    return path


def probe_quality(tensor: np.ndarray) -> np.ndarray:
    return (tensor.astype(np.float64) * probe_weights()).sum(axis=(1, 2, 3))


def test_crops_become_rgb_in_minus_one_to_one_nchw() -> None:
    batch = crops(3)
    tensor = crops_to_input(batch)
    assert tensor.dtype == np.float32 and tensor.shape == (3, 3, SIZE, SIZE)
    np.testing.assert_allclose(tensor, by_hand_contract(batch), atol=1e-6)
    # One pixel spelled out: BGR (0, 128, 255) is RGB (1, 0.0039, -1).
    crop = np.zeros((SIZE, SIZE, 3), np.uint8)
    crop[0, 0] = (0, 128, 255)
    np.testing.assert_allclose(
        crops_to_input([crop])[0, :, 0, 0], [1.0, 0.5 / 127.5, -1.0], atol=1e-6
    )


def test_a_model_without_metadata_is_fed_the_contract(tmp_path: Path) -> None:
    batch = crops(4)
    model = QualityModel(probe_model(tmp_path / "plain.onnx"), [CPU])
    expected = probe_quality(by_hand_contract(batch))
    np.testing.assert_allclose(model.predict(batch), expected, rtol=1e-4, atol=1e-2)


def test_a_model_is_fed_as_its_metadata_declares(tmp_path: Path) -> None:
    """BGR order, pixels / 255 and ImageNet-style mean and std, as the file says."""
    mean, std = [0.406, 0.456, 0.485], [0.225, 0.224, 0.229]
    metadata = {
        contract.META_COLOR_ORDER: "BGR",
        contract.META_PIXEL_SCALE: repr(1 / 255),
        contract.META_MEAN: json.dumps(mean),
        contract.META_STD: json.dumps(std),
    }
    model = QualityModel(probe_model(tmp_path / "bgr.onnx", metadata), [CPU])
    batch = crops(4)
    by_hand = np.stack([(crop / 255.0 - mean) / std for crop in batch]).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(model.predict(batch), probe_quality(by_hand), rtol=1e-4, atol=1e-2)
    # ... which is not what the contract's preprocessing would have given.
    contract_quality = probe_quality(by_hand_contract(batch))
    assert np.abs(model.predict(batch) - contract_quality).min() > 1.0


@pytest.mark.parametrize("fixed_batch", [1, 2])
def test_a_fixed_batch_model_is_run_that_many_crops_at_a_time(
    tmp_path: Path, fixed_batch: int
) -> None:
    model = QualityModel(probe_model(tmp_path / "fixed.onnx", batch=fixed_batch), [CPU])
    batch = crops(5)  # not a multiple of 2: the last run is short
    expected = probe_quality(by_hand_contract(batch))
    np.testing.assert_allclose(model.predict(batch), expected, rtol=1e-4, atol=1e-2)
