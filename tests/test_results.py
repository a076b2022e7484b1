"""`fiqa evaluate`'s table on hand-built curves: the share of the random-to-oracle gap removed."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fiqa_cli.evaluation.edc import EdcCurve
from fiqa_cli.evaluation.results import MethodResult, result_table


def flat_curve(fnmr_at_start: float, fnmr_after_a_quarter: float) -> EdcCurve:
    """FNMR `fnmr_at_start` until a quarter of the samples are discarded, then the second value."""
    return EdcCurve(
        discard_fractions=np.array([0.0, 0.25]),
        fnmr=np.array([fnmr_at_start, fnmr_after_a_quarter]),
        remaining_mated=np.array([8, 6]),
    )


def test_gap_removed_is_measured_from_random_towards_the_oracle_of_the_same_fmr() -> None:
    # pAUC up to 0.5: random 0.25*0.4 + 0.25*0.4 = 0.2; oracle 0.1 + 0 = 0.1;
    # "ours" 0.1 + 0.25*0.2 = 0.15, half-way; "worse" 0.1 + 0.25*0.6 = 0.25, behind random.
    # At the second FMR the references differ, so each FMR must use its own.
    curves = {
        (1e-3, "random"): flat_curve(0.4, 0.4),
        (1e-3, "oracle"): flat_curve(0.4, 0.0),
        (1e-3, "ours"): flat_curve(0.4, 0.2),
        (1e-3, "worse"): flat_curve(0.4, 0.6),
        (1e-4, "random"): flat_curve(0.8, 0.8),
        (1e-4, "oracle"): flat_curve(0.8, 0.4),
        (1e-4, "ours"): flat_curve(0.8, 0.7),
        (1e-4, "worse"): flat_curve(0.8, 0.8),
    }
    results = [MethodResult(method, fmr, 0.5, curve) for (fmr, method), curve in curves.items()]
    table = result_table(results, max_discard=0.5)
    gap = {(row["fmr"], row["method"]): row["gap_removed"] for row in table}
    assert gap[(1e-3, "random")] == 0.0 and gap[(1e-3, "oracle")] == 1.0
    assert gap[(1e-3, "ours")] == pytest.approx(0.5)
    assert gap[(1e-3, "worse")] == pytest.approx(-0.5)
    assert gap[(1e-4, "ours")] == pytest.approx(0.25)
    assert gap[(1e-4, "worse")] == pytest.approx(0.0)
    assert list(table[0]) == ["method", "fmr", "threshold", "fnmr@0", "pauc@0.5", "auc",
                              "gap_removed"]  # fmt: skip


def test_gap_removed_is_nan_without_a_gap_or_a_reference() -> None:
    no_gap = [
        MethodResult("random", 1e-3, 0.5, flat_curve(0.4, 0.4)),
        MethodResult("oracle", 1e-3, 0.5, flat_curve(0.4, 0.4)),
        MethodResult("ours", 1e-3, 0.5, flat_curve(0.4, 0.2)),
    ]
    assert all(math.isnan(row["gap_removed"]) for row in result_table(no_gap, 0.5))
    without_oracle = [MethodResult("ours", 1e-3, 0.5, flat_curve(0.4, 0.2))]
    assert math.isnan(result_table(without_oracle, 0.5)[0]["gap_removed"])
