"""Fitting a quality model's `quality_100` calibration (`fiqa calibrate`) on labelled photos.

Each photo's label is how many of its mated comparisons fail at the threshold of the chosen
FMR (a comparison fails when its score is at or below the threshold, the EDC's rule), out of
how many it has. The expected FNMR as a function of raw quality is the weighted isotonic
(non-increasing) regression of those failure rates on quality, each photo weighted by its
comparisons: pool-adjacent-violators, which makes no assumption about the curve's shape. Each
pooled block's rate is then shrunk towards the whole set's, as if the block held
`PRIOR_COMPARISONS` more comparisons failing at the overall rate: a block without a single
failure gets a finite FNMR, never zero, and a small block at either end cannot promise far more
than its few comparisons show (on LFW, half the identities fitted without it predicted 0.13%
for photos that failed 3.6% of the time on the other half).

How well that holds out of sample is measured by fitting on half of the identities and
predicting the other half (two folds split by a hash of the identity's name), reported per
band of quality_100 as the observed against the predicted FNMR.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fiqa_cli.errors import FiqaError
from fiqa_cli.evaluation.edc import Comparisons
from fiqa_cli.runtime.calibration import Calibration, score_of_fnmr

# quality_100 bands of the fit report, 10 points (0.4 decades of FNMR) each.
REPORT_BANDS = tuple((low, low + 9) for low in range(0, 90, 10)) + ((90, 100),)
# The weight of the overall rate in each pooled block's (see the module docstring).
PRIOR_COMPARISONS = 100.0


class CalibrationFitError(FiqaError, ValueError):
    """The photos cannot give a calibration; the message says why."""


@dataclass(frozen=True)
class PhotoFailures:
    """Per photo: mated comparisons, and how many of them fail at the threshold."""

    comparisons: np.ndarray
    failures: np.ndarray


def photo_failures(comparisons: Comparisons, count: int, threshold: float) -> PhotoFailures:
    """Each of `count` photos' mated comparisons and failures (score <= threshold)."""
    failed = (comparisons.mated_scores <= threshold).astype(np.int64)
    both = np.concatenate([comparisons.mated_a, comparisons.mated_b])
    return PhotoFailures(
        np.bincount(both, minlength=count),
        np.bincount(both, weights=np.concatenate([failed, failed]), minlength=count),
    )


def fit_calibration(
    qualities: np.ndarray,
    labels: PhotoFailures,
    fmr: float,
    *,
    recognition_model: str = "",
    fit: dict[str, object] | None = None,
) -> Calibration:
    """The calibration of raw `qualities` (one per photo) from their failure counts."""
    qualities = np.asarray(qualities, dtype=np.float64)
    used = (labels.comparisons > 0) & np.isfinite(qualities)
    if used.sum() < 2 or len(np.unique(qualities[used])) < 2:
        raise CalibrationFitError(
            "a calibration needs 2 or more photos with distinct qualities and mated comparisons"
        )
    order = np.argsort(qualities[used], kind="stable")
    x = qualities[used][order]
    comparisons = labels.comparisons[used][order].astype(np.float64)
    failures = labels.failures[used][order]
    blocks = _pooled_blocks(x, failures, comparisons)
    # Half a failure more than observed keeps the overall rate above zero.
    overall = (failures.sum() + 0.5) / (comparisons.sum() + 1.0)
    shrunk_failures = (
        np.array([failures[a:b].sum() for a, b in blocks]) + PRIOR_COMPARISONS * overall
    )
    shrunk_weights = np.array([comparisons[a:b].sum() for a, b in blocks]) + PRIOR_COMPARISONS
    # Shrinking can leave a small block's rate below a larger one's at higher quality: the
    # blocks are pooled again on the shrunk rates, so monotonicity comes from pooling, never
    # from clipping a rate to its neighbour's.
    knots, fnmr = [], []
    for first, last in _pooled_blocks(np.arange(len(blocks)), shrunk_failures, shrunk_weights):
        start, end = blocks[first][0], blocks[last - 1][1]
        # The pooled range's knot is its median quality: between knots the scale is
        # interpolated.
        knots.append(float(np.median(x[start:end])))
        fnmr.append(float(shrunk_failures[first:last].sum() / shrunk_weights[first:last].sum()))
    return Calibration(
        qualities=knots,
        fnmr=[float(f) for f in fnmr],
        fmr=fmr,
        recognition_model=recognition_model,
        samples=int(used.sum()),
        mated_comparisons=int(comparisons.sum() // 2),
        fit=fit or {},
    )


def _pooled_blocks(
    x: np.ndarray, failures: np.ndarray, weights: np.ndarray
) -> list[tuple[int, int]]:
    """Pool-adjacent-violators for a non-increasing failure rate along ascending x: the
    index ranges of the pooled blocks. Equal x values always share a block."""
    # Start from one block per distinct quality.
    starts = np.flatnonzero(np.r_[True, x[1:] != x[:-1]])
    ends = np.r_[starts[1:], len(x)]
    stack: list[list[float]] = []  # [start, end, failures, weight]
    for start, end in zip(starts, ends, strict=True):
        stack.append([start, end, failures[start:end].sum(), weights[start:end].sum()])
        # A rate at or above the one before it (higher quality, as many failures or more) is
        # pooled back; pooling equal rates changes no fitted value and gives a run of photos
        # without failures one block, whose smoothed rate then reflects all its comparisons.
        while len(stack) > 1 and stack[-1][2] * stack[-2][3] >= stack[-2][2] * stack[-1][3]:
            last = stack.pop()
            stack[-1][1] = last[1]
            stack[-1][2] += last[2]
            stack[-1][3] += last[3]
    return [(int(start), int(end)) for start, end, _, _ in stack]


def identity_folds(identities: Sequence[str]) -> np.ndarray:
    """0 or 1 per photo, by a hash of its identity: no identity is on both sides."""
    return np.array(
        [hashlib.sha256(name.encode()).digest()[0] % 2 for name in identities], dtype=np.int64
    )


def held_out_fit(
    qualities: np.ndarray, labels: PhotoFailures, folds: np.ndarray, fmr: float
) -> list[dict[str, object]]:
    """Per quality_100 band: photos, comparisons, predicted and observed FNMR, each photo
    predicted by the calibration fitted on the other fold."""
    predicted = np.full(len(qualities), np.nan)
    for fold in (0, 1):
        train, test = folds != fold, folds == fold
        calibration = fit_calibration(qualities[train], _subset(labels, train), fmr)
        predicted[test] = calibration.expected_fnmr(qualities[test])
    scores = score_of_fnmr(predicted)
    bands = []
    for low, high in REPORT_BANDS:
        chosen = (scores >= low) & (scores <= high) & (labels.comparisons > 0)
        if not chosen.any():
            continue
        comparisons = int(labels.comparisons[chosen].sum())
        bands.append(
            {
                "quality_100": f"{low}-{high}",
                "photos": int(chosen.sum()),
                "comparisons": comparisons,
                "predicted_fnmr": _weighted_mean(predicted, labels.comparisons, chosen),
                "observed_fnmr": float(labels.failures[chosen].sum() / comparisons)
                if comparisons
                else None,
            }
        )
    return bands


def _subset(labels: PhotoFailures, chosen: np.ndarray) -> PhotoFailures:
    return PhotoFailures(labels.comparisons[chosen], labels.failures[chosen])


def _weighted_mean(values: np.ndarray, weights: np.ndarray, chosen: np.ndarray) -> float | None:
    if not weights[chosen].sum():
        return None
    return float(np.average(values[chosen], weights=weights[chosen]))
