"""Quality baselines every EDC plot is measured against, computed on the evaluation's own crops.

Each function returns one quality per sample, higher meaning better. A learned quality model
earns its keep only by beating these; the oracle marks the best any ranking could do with the
recognition model at hand.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

from fiqa_cli.runtime.boxes import box_areas

if TYPE_CHECKING:
    from fiqa_cli.evaluation.edc import Comparisons
    from fiqa_cli.evaluation.samples import EvaluationSet

# The two baselines that bound every method: `fiqa evaluate` reports the share of the gap between
# them that a method closes.
RANDOM, ORACLE = "random", "oracle"
BASELINE_NAMES = (
    RANDOM,
    "box-size",
    "detector-confidence",
    "sharpness",
    "exposure",
    "contrast",
    ORACLE,
)
# Mid-grey: crops whose mean luminance is furthest from it are called badly exposed.
_MID_GREY = 127.5


def baseline_qualities(
    evaluation_set: EvaluationSet, comparisons: Comparisons, seed: int
) -> dict[str, np.ndarray]:
    """Every baseline on the evaluated crops; box and detector ones need detections."""
    crops = evaluation_set.crops
    qualities = {RANDOM: random_quality(len(crops), seed)}
    if evaluation_set.bboxes is not None:
        qualities["box-size"] = box_size(evaluation_set.bboxes)
        qualities["detector-confidence"] = evaluation_set.det_scores
    qualities["sharpness"] = sharpness(crops)
    qualities["exposure"] = exposure(crops)
    qualities["contrast"] = contrast(crops)
    qualities[ORACLE] = oracle_quality(
        len(crops), comparisons.mated_a, comparisons.mated_b, comparisons.mated_scores
    )
    return qualities


def random_quality(count: int, seed: int) -> np.ndarray:
    """A seeded random order: the curve a quality measure must get below."""
    return np.random.default_rng(seed).random(count)


def box_size(bboxes: np.ndarray) -> np.ndarray:
    """Side of the square with the detection box's area, in pixels of the original image."""
    return np.sqrt(box_areas(np.asarray(bboxes, dtype=np.float64).reshape(-1, 4)))


def sharpness(crops_bgr: np.ndarray) -> np.ndarray:
    """Variance of the Laplacian of each crop's luminance."""
    return np.array([cv2.Laplacian(_grey(crop), cv2.CV_64F).var() for crop in crops_bgr])


def exposure(crops_bgr: np.ndarray) -> np.ndarray:
    """Minus the distance of mean luminance from mid-grey: under- and over-exposure rank low."""
    return np.array([-abs(_grey(crop).mean() - _MID_GREY) for crop in crops_bgr])


def contrast(crops_bgr: np.ndarray) -> np.ndarray:
    """Standard deviation of each crop's luminance (RMS contrast)."""
    return np.array([_grey(crop).std() for crop in crops_bgr])


def _grey(crop_bgr: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(crop_bgr, cv2.COLOR_BGR2GRAY).astype(np.float64)


def oracle_quality(
    count: int, mated_a: np.ndarray, mated_b: np.ndarray, mated_scores: np.ndarray
) -> np.ndarray:
    """Each sample's mean similarity to its mates; -inf for samples without a mate.

    It uses the very scores the EDC is computed from, so no quality measure can be expected
    to rank better: a bound, not a competitor.
    """
    totals = np.bincount(mated_a, mated_scores, count) + np.bincount(mated_b, mated_scores, count)
    mates = np.bincount(mated_a, minlength=count) + np.bincount(mated_b, minlength=count)
    oracle = np.full(count, -np.inf)
    np.divide(totals, mates, out=oracle, where=mates > 0)
    return oracle
