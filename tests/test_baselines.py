"""The baselines `fiqa evaluate` measures every method against, on crops whose answer is known:
each must rank as its docstring says, or the table compares methods with a wrong yardstick."""

from __future__ import annotations

import numpy as np
import pytest

from fiqa_cli.evaluation import baselines
from fiqa_cli.evaluation.baselines import BASELINE_NAMES, ORACLE, RANDOM
from fiqa_cli.evaluation.edc import all_pairs_comparisons
from fiqa_cli.evaluation.samples import EvaluationSet


def _flat(level: int) -> np.ndarray:
    return np.full((112, 112, 3), level, dtype=np.uint8)


def test_exposure_prefers_mid_grey_to_either_extreme() -> None:
    levels = [128, 20, 235, 100, 160, 0, 255]
    qualities = baselines.exposure(np.stack([_flat(level) for level in levels]))
    assert qualities == pytest.approx([-abs(level - 127.5) for level in levels])
    order = [levels[i] for i in np.argsort(-qualities, kind="stable")]
    assert order == [128, 100, 160, 20, 235, 0, 255]
    # Luminance weighs blue least: a pure blue crop (BGR) is dark.
    blue = np.zeros((112, 112, 3), dtype=np.uint8)
    blue[..., 0] = 255
    assert baselines.exposure(blue[None]) == pytest.approx([29.0 - 127.5], abs=0.5)


def test_contrast_and_sharpness_prefer_the_detailed_crop() -> None:
    rng = np.random.default_rng(0)
    detailed = rng.integers(0, 256, (112, 112, 3), dtype=np.uint8)
    # The same pixels blurred: less contrast and far less high-frequency detail.
    blurred = np.stack([_blur(detailed[..., c]) for c in range(3)], axis=-1)
    crops = np.stack([_flat(128), blurred, detailed])
    assert np.argsort(baselines.contrast(crops)).tolist() == [0, 1, 2]
    assert np.argsort(baselines.sharpness(crops)).tolist() == [0, 1, 2]
    assert baselines.contrast(crops)[0] == 0 and baselines.sharpness(crops)[0] == 0
    # RMS contrast: black and white halves lie 127.5 from their mean.
    halves = _flat(0)
    halves[:, 56:] = 255
    assert baselines.contrast(halves[None]) == pytest.approx([127.5])


def _blur(channel: np.ndarray) -> np.ndarray:
    padded = np.pad(channel.astype(np.float64), 2, mode="edge")
    total = sum(padded[dy : dy + 112, dx : dx + 112] for dy in range(5) for dx in range(5))
    return (total / 25).round().astype(np.uint8)


def test_box_size_is_the_side_of_a_square_of_the_same_area() -> None:
    boxes = np.array([[0, 0, 10, 40], [5, 5, 25, 25], [0, 0, 3, 3]], dtype=np.float32)
    assert baselines.box_size(boxes) == pytest.approx([20.0, 20.0, 3.0])


def test_oracle_is_the_mean_similarity_to_a_sample_s_mates() -> None:
    # Sample 0 is mated to 1 (0.9) and 2 (0.3); 3 has no mate.
    qualities = baselines.oracle_quality(
        4, np.array([0, 0]), np.array([1, 2]), np.array([0.9, 0.3])
    )
    assert qualities[:3] == pytest.approx([0.6, 0.9, 0.3])
    assert qualities[3] == -np.inf


def test_random_is_seeded() -> None:
    first = baselines.random_quality(50, seed=1)
    assert np.array_equal(first, baselines.random_quality(50, seed=1))
    assert not np.array_equal(first, baselines.random_quality(50, seed=2))


@pytest.mark.parametrize("with_boxes", [True, False])
def test_every_baseline_is_computed_and_named(with_boxes: bool) -> None:
    crops = np.stack([_flat(level) for level in (60, 128, 200)])
    boxes = np.array([[0, 0, 10, 10]] * 3, dtype=np.float32)
    evaluation_set = EvaluationSet(
        samples=[],
        crops=crops,
        bboxes=boxes if with_boxes else None,
        det_scores=np.array([0.9, 0.8, 0.7]) if with_boxes else None,
    )
    # Samples 0 and 1 are one identity, 2 another.
    embeddings = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]])
    comparisons = all_pairs_comparisons(embeddings, np.array([0, 0, 1]), max_fmr=1.0)
    qualities = baselines.baseline_qualities(evaluation_set, comparisons, seed=0)
    box_ones = {"box-size", "detector-confidence"}
    expected = set(BASELINE_NAMES) - (set() if with_boxes else box_ones)
    assert set(qualities) == expected and {RANDOM, ORACLE} <= expected
    assert all(len(values) == 3 for values in qualities.values())
    assert np.argmax(qualities["exposure"]) == 1
    assert qualities[ORACLE] == pytest.approx([0.8, 0.8, -np.inf])
