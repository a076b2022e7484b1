"""EDC arithmetic on hand-built cases with known answers, ties included."""

from __future__ import annotations

import numpy as np
import pytest

from fiqa_cli.evaluation.edc import (
    all_pairs_comparisons,
    edc_curve,
    non_mated_tail,
    pair_comparisons,
    tail_size,
)

# Four samples; mated pairs (0,1) (1,2) (2,3) (0,3). At threshold 0.5 the pairs (0,1) and
# (0,3) are false non-matches: both involve sample 0.
MATED_A = np.array([0, 1, 2, 0])
MATED_B = np.array([1, 2, 3, 3])
MATED_SCORES = np.array([0.2, 0.9, 0.8, 0.3])
THRESHOLD = 0.5


def test_curve_of_distinct_qualities() -> None:
    curve = edc_curve(np.array([0.1, 0.2, 0.3, 0.4]), MATED_A, MATED_B, MATED_SCORES, THRESHOLD)
    # Discarding sample 0 removes both errors; after sample 1, pair (2,3) is left; after
    # sample 2, no mated pair is left, so the curve ends.
    np.testing.assert_allclose(curve.discard_fractions, [0.0, 0.25, 0.5])
    np.testing.assert_allclose(curve.fnmr, [0.5, 0.0, 0.0])
    np.testing.assert_array_equal(curve.remaining_mated, [4, 2, 1])
    assert curve.fnmr_without_discard == 0.5
    assert curve.area(0.2) == pytest.approx(0.5 * 0.2)
    assert curve.area(1.0) == pytest.approx(0.5 * 0.25)


def test_tied_qualities_are_discarded_together() -> None:
    curve = edc_curve(np.array([0.1, 0.1, 0.3, 0.4]), MATED_A, MATED_B, MATED_SCORES, THRESHOLD)
    # Samples 0 and 1 share the lowest quality: no level discards one without the other.
    np.testing.assert_allclose(curve.discard_fractions, [0.0, 0.5])
    np.testing.assert_allclose(curve.fnmr, [0.5, 0.0])
    assert curve.area(0.2) == pytest.approx(0.1)
    assert curve.area(1.0) == pytest.approx(0.25)


def test_minus_infinity_ranks_lowest_and_nan_is_refused() -> None:
    finite = edc_curve(np.array([0.1, 0.2, 0.3, 0.4]), MATED_A, MATED_B, MATED_SCORES, THRESHOLD)
    failed = edc_curve(
        np.array([-np.inf, 0.2, 0.3, 0.4]), MATED_A, MATED_B, MATED_SCORES, THRESHOLD
    )
    np.testing.assert_allclose(failed.fnmr, finite.fnmr)
    np.testing.assert_allclose(failed.discard_fractions, finite.discard_fractions)
    with pytest.raises(ValueError, match="NaN"):
        edc_curve(np.array([np.nan, 0.2, 0.3, 0.4]), MATED_A, MATED_B, MATED_SCORES, THRESHOLD)


def test_score_equal_to_threshold_is_a_non_match() -> None:
    curve = edc_curve(np.array([0.1, 0.2, 0.3, 0.4]), MATED_A, MATED_B, MATED_SCORES, 0.8)
    # 0.2, 0.3 and 0.8 are not strictly above 0.8.
    assert curve.fnmr_without_discard == 0.75


def test_threshold_never_exceeds_target_fmr_with_tied_scores() -> None:
    tail = non_mated_tail(np.array([0.9, 0.8, 0.8, 0.7, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]))
    assert tail.threshold(0.1) == 0.8  # k = 1: only 0.9 lies above
    assert tail.threshold(0.2) == 0.8  # k = 2, but the tie at 0.8 cannot be split
    assert tail.threshold(0.3) == 0.7
    assert tail.threshold(0.05) == 0.9  # k = 0: no false match allowed
    assert not tail.resolves(0.05)
    assert tail.resolves(0.1)
    with pytest.raises(ValueError, match=r"must lie in \(0, 1\), got 1.0"):
        tail.threshold(1.0)


def test_threshold_rank_survives_floating_point_products() -> None:
    # 1e-3 * 1000 must give one allowed false match, not floor(0.999...) = 0.
    tail = non_mated_tail(np.arange(1000.0))
    assert tail.threshold(1e-3) == 998.0


def test_curve_matches_a_direct_count_on_random_data_with_ties() -> None:
    rng = np.random.default_rng(3)
    n = 40
    qualities = rng.integers(0, 8, n).astype(float)  # few levels: many ties
    mated = np.array([(a, b) for a in range(n) for b in range(a + 1, n) if rng.random() < 0.2])
    scores = rng.random(len(mated))
    threshold = 0.3
    curve = edc_curve(qualities, mated[:, 0], mated[:, 1], scores, threshold)

    expected_x, expected_fnmr = [0.0], [np.mean(scores <= threshold)]
    for level in np.unique(qualities):
        kept = (qualities[mated[:, 0]] > level) & (qualities[mated[:, 1]] > level)
        if kept.any():
            expected_x.append(np.mean(qualities <= level))
            expected_fnmr.append(np.mean(scores[kept] <= threshold))
    np.testing.assert_allclose(curve.discard_fractions, expected_x)
    np.testing.assert_allclose(curve.fnmr, expected_fnmr)

    grid = np.linspace(0.0, 0.3, 30001)
    step_values = np.array(expected_fnmr)[np.searchsorted(expected_x, grid, side="right") - 1]
    assert curve.area(0.3) == pytest.approx(np.mean(step_values) * 0.3, abs=1e-4)


def test_all_pairs_agree_with_brute_force_and_keep_the_needed_tail() -> None:
    rng = np.random.default_rng(0)
    embeddings = rng.normal(size=(30, 8)).astype(np.float32)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    labels = np.repeat(np.arange(10), 3)
    comparisons = all_pairs_comparisons(embeddings, labels, max_fmr=0.05, chunk_rows=7)

    similarity = embeddings @ embeddings.T
    a, b = np.triu_indices(30, k=1)
    same = labels[a] == labels[b]
    assert len(comparisons.mated_scores) == same.sum() == 30
    found = sorted(zip(comparisons.mated_a, comparisons.mated_b, strict=True))
    assert found == sorted(zip(a[same], b[same], strict=True))
    np.testing.assert_allclose(
        comparisons.mated_scores, similarity[comparisons.mated_a, comparisons.mated_b], rtol=1e-6
    )
    non_mated = np.sort(similarity[a[~same], b[~same]])[::-1]
    assert comparisons.non_mated.count == len(non_mated) == 435 - 30
    assert len(comparisons.non_mated.scores_desc) == tail_size(len(non_mated), 0.05)
    for fmr in (0.01, 0.05):
        expected = non_mated_tail(non_mated).threshold(fmr)
        assert comparisons.non_mated.threshold(fmr) == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="tail keeps"):
        comparisons.non_mated.threshold(0.2)


def test_pair_comparisons_score_listed_pairs() -> None:
    embeddings = np.eye(3, dtype=np.float32)
    embeddings[2] = embeddings[0]
    comparisons = pair_comparisons(embeddings, np.array([[0, 2]]), np.array([[0, 1], [1, 2]]))
    np.testing.assert_allclose(comparisons.mated_scores, [1.0])
    np.testing.assert_allclose(comparisons.non_mated.scores_desc, [0.0, 0.0])
    assert comparisons.non_mated.count == 2
