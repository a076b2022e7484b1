"""The identity-level bootstrap of `fiqa evaluate --bootstrap`, on synthetic photos whose
generating process is known.

Synthetic set: each identity has photos with a true quality t and a difficulty u shared by
all its photos; a mated comparison scores u + min(t_a, t_b) + noise and fails at or below 0.
Method A sees t with photo noise; method B sees t with an error shared by all photos of an
identity. Both the failures and B's errors cluster by identity, which is what makes
resampling comparisons instead of identities wrong.
"""

from __future__ import annotations

import numpy as np
import pytest

from fiqa_cli.evaluation.bootstrap import (
    IdentityResampler,
    draw_identities,
    identity_indices,
    interval,
)
from fiqa_cli.evaluation.edc import edc_curve

MAX_DISCARD = 0.2
THRESHOLD = 0.0


def synthetic_set(rng: np.random.Generator, identities: int, photos: int) -> dict:
    identity = np.repeat(np.arange(identities), photos)
    true_quality = rng.normal(size=len(identity))
    difficulty = 2.0 * rng.normal(size=identities)
    first, second = np.triu_indices(photos, 1)
    a = (np.arange(identities)[:, None] * photos + first).ravel()
    b = (np.arange(identities)[:, None] * photos + second).ravel()
    scores = (
        difficulty[identity[a]]
        + np.minimum(true_quality[a], true_quality[b])
        + 0.5 * rng.normal(size=len(a))
        + 1.5
    )
    shared_error = 1.5 * rng.normal(size=identities)
    return {
        "identity": identity,
        "a": a,
        "b": b,
        "scores": scores,
        "A": true_quality + 0.5 * rng.normal(size=len(identity)),
        "B": true_quality + shared_error[identity] + 0.3 * rng.normal(size=len(identity)),
        # As good as A by construction: their true difference is 0.
        "A2": true_quality + 0.5 * rng.normal(size=len(identity)),
    }


def full_pauc(data: dict, method: str) -> float:
    curve = edc_curve(data[method], data["a"], data["b"], data["scores"], THRESHOLD)
    return curve.area(MAX_DISCARD)


def resampled_difference(data: dict, counts: np.ndarray) -> np.ndarray:
    resampler = IdentityResampler(
        data["identity"], data["a"], data["b"], data["scores"], counts.shape[1]
    )
    a, b = (resampler.paucs(data[m], [THRESHOLD], counts, MAX_DISCARD)[0] for m in "AB")
    return a - b


def test_resampled_pauc_is_the_edc_of_the_resampled_set_written_out() -> None:
    rng = np.random.default_rng(3)
    identities = 15
    # 1 to 5 photos each (1: photos without a mated comparison), tied qualities and scores,
    # failed photos at -inf.
    identity = np.concatenate([np.full(rng.integers(1, 6), i) for i in range(identities)])
    qualities = rng.integers(0, 6, size=len(identity)).astype(np.float64)
    qualities[rng.random(len(qualities)) < 0.1] = -np.inf
    pairs = [
        (first, second)
        for person in range(identities)
        for k, first in enumerate(np.flatnonzero(identity == person))
        for second in np.flatnonzero(identity == person)[k + 1 :]
    ]
    a, b = np.array(pairs).T
    scores = rng.integers(0, 5, size=len(a)).astype(np.float64)
    thresholds = [1.0, 2.0]
    counts = draw_identities(identities, 200, rng)
    counts[0] = 1  # the full set is a draw too
    resampler = IdentityResampler(identity, a, b, scores, identities)
    got = resampler.paucs(qualities, thresholds, counts, 0.3)
    assert got.shape == (2, 200)
    for draw, drawn in enumerate(counts):
        written = _written_out(identity, qualities, a, b, scores, drawn)
        for row, threshold in enumerate(thresholds):
            expected = edc_curve(*written, threshold).area(0.3)
            assert got[row, draw] == pytest.approx(expected, abs=1e-12)


def _written_out(identity, qualities, a, b, scores, drawn):
    """The resampled set in full: each identity's photos and comparisons, once per draw."""
    parts_q, parts_a, parts_b, parts_s = [], [], [], []
    offset = 0
    for person, times in enumerate(drawn):
        photos = np.flatnonzero(identity == person)
        local = np.full(len(identity), -1)
        local[photos] = np.arange(len(photos))
        own = np.flatnonzero(identity[a] == person)
        for _ in range(times):
            parts_q.append(qualities[photos])
            parts_a.append(local[a[own]] + offset)
            parts_b.append(local[b[own]] + offset)
            parts_s.append(scores[own])
            offset += len(photos)
    return tuple(map(np.concatenate, (parts_q, parts_a, parts_b, parts_s)))


def test_each_draw_takes_as_many_identities_as_there_are() -> None:
    counts = draw_identities(50, 400, np.random.default_rng(0))
    assert counts.shape == (400, 50) and (counts.sum(axis=1) == 50).all()
    # With replacement: about 1 - 1/e of the identities appear in a draw.
    assert 0.58 < (counts > 0).mean() < 0.69
    assert identity_indices(["b", "a", "b"], ["a", "b"]).tolist() == [1, 0, 1]


def test_interval_is_as_wide_as_the_spread_over_fresh_sets_of_identities() -> None:
    """The 95% interval of the paired difference, over 40 sets of 80 identities, against the
    difference itself measured on 20,000 identities: it must hold it about 95% of the time,
    and be as wide as the spread of the set's difference around it. Resampling comparisons
    instead of identities gives intervals about 0.4 times as wide, holding it half the time."""
    rng = np.random.default_rng(1)
    population = synthetic_set(rng, 20_000, 10)
    truth = full_pauc(population, "A") - full_pauc(population, "B")
    assert truth < -0.002  # A is the better method, by a margin one set cannot always show
    differences, widths, covered = [], [], 0
    for _ in range(40):
        data = synthetic_set(rng, 80, 10)
        low, high = interval(resampled_difference(data, draw_identities(80, 300, rng)))
        differences.append(full_pauc(data, "A") - full_pauc(data, "B"))
        widths.append(high - low)
        covered += low <= truth <= high
    ratio = np.mean(widths) / (2 * 1.96 * np.std(differences))
    assert 0.75 < ratio < 1.35, ratio
    assert covered >= 34, covered


def test_paired_interval_holds_zero_for_equal_methods_and_excludes_it_for_a_better_one() -> None:
    rng = np.random.default_rng(2)
    data = synthetic_set(rng, 150, 6)
    data["random"] = rng.normal(size=len(data["A"]))
    counts = draw_identities(150, 500, rng)
    resampler = IdentityResampler(data["identity"], data["a"], data["b"], data["scores"], 150)

    def paucs(method: str) -> np.ndarray:
        return resampler.paucs(data[method], [THRESHOLD], counts, MAX_DISCARD)[0]

    assert interval(paucs("A") - paucs("A")) == (0.0, 0.0)  # paired: the same draws for both
    low, high = interval(paucs("A") - paucs("A2"))
    assert low < 0 < high
    low, high = interval(paucs("A") - paucs("random"))
    assert high < 0  # A discards the failing photos first: a lower pAUC, every time
    # A paired interval is far narrower than the two single intervals side by side.
    single_a, single_random = interval(paucs("A")), interval(paucs("random"))
    assert high - low < 0.5 * ((single_a[1] - single_a[0]) + (single_random[1] - single_random[0]))


def test_a_comparison_across_identities_is_refused() -> None:
    with pytest.raises(ValueError, match="two identities"):
        IdentityResampler(np.array([0, 1]), np.array([0]), np.array([1]), np.array([0.5]), 2)
