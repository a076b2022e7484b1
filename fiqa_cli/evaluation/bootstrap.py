"""Identity-level bootstrap of EDC pAUCs (`fiqa evaluate --bootstrap N`).

Photos of one person are not independent: a person photographed badly, or one the recognition
model confuses, brings all their photos and all their mated comparisons along. So a draw
resamples identities, not photos or comparisons: as many identities as the set holds, drawn
with replacement, each bringing every one of its photos and mated comparisons, counted as
often as it was drawn. Resampling comparisons instead treats the few dozen false non-matches
at a strict FMR as independent when they cluster on a few people, and gives intervals that are
too narrow.

Every method is measured on the same draws, so the difference between two methods is paired:
its interval holds only the variation that does not cancel between them, far less than either
pAUC's own.

The decision threshold of each FMR is held at the full set's in every draw, not refitted:
- it is a property of the recognition model alone, the same for every quality method, so a
  refit moves the paired difference only through second-order effects;
- a deployed system fixes its threshold once; the question is how well quality ranks the
  errors at that operating point;
- refitting would need every non-mated score with its pair of identities (millions for a few
  thousand photos) and a weighted quantile per draw, where holding needs the mated comparisons
  only.
So the intervals are conditional on the threshold: they leave out the threshold's own sampling
noise, which widens a single pAUC's interval far more than a paired difference's.

The computation is vectorised over draws: a draw is a vector of per-identity counts, and a
method's EDC on it is a weighted EDC whose photo and comparison counts per quality level are
cumulative sums of those counts over (identity, level) cells. A draw therefore costs time in
proportion to the number of photos, never to the number of comparisons, and gives exactly the
pAUC that `fiqa_cli.evaluation.edc` computes on the resampled set written out in full.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from fiqa_cli.evaluation.edc import Comparisons

# Draws computed at once: bounds the draws x cells arrays to a few MB each.
_CHUNK_CELLS = 1_000_000
INTERVAL = 0.95


def draw_identities(identity_count: int, draws: int, rng: np.random.Generator) -> np.ndarray:
    """`draws` x `identity_count` counts: how often each identity is drawn when as many
    identities as there are are drawn with replacement (each row sums to `identity_count`)."""
    if identity_count < 1 or draws < 1:
        raise ValueError("a bootstrap needs an identity and a draw or more")
    drawn = rng.integers(identity_count, size=(draws, identity_count))
    rows = np.arange(draws)[:, None] * identity_count
    return np.bincount((drawn + rows).ravel(), minlength=draws * identity_count).reshape(
        draws, identity_count
    )


def identity_indices(identities: Sequence[str], names: Sequence[str]) -> np.ndarray:
    """Each photo's identity as an index into `names` (which must hold them all)."""
    position = {name: index for index, name in enumerate(names)}
    return np.array([position[identity] for identity in identities], dtype=np.int64)


class IdentityResampler:
    """The pAUC of per-photo qualities on any draw of identities (`draw_identities`).

    `sample_identity` gives each photo's identity (an index below `identity_count`);
    `mated_a`, `mated_b` and `mated_scores` are the mated comparisons, as in
    `fiqa_cli.evaluation.edc.Comparisons`. A mated comparison belongs to the identity of
    its two photos.
    """

    def __init__(
        self,
        sample_identity: np.ndarray,
        mated_a: np.ndarray,
        mated_b: np.ndarray,
        mated_scores: np.ndarray,
        identity_count: int,
    ) -> None:
        self.sample_identity = np.asarray(sample_identity, dtype=np.int64)
        self.mated_a = np.asarray(mated_a, dtype=np.int64)
        self.mated_b = np.asarray(mated_b, dtype=np.int64)
        self.mated_scores = np.asarray(mated_scores, dtype=np.float64)
        self.identity_count = identity_count
        if np.any(self.sample_identity[self.mated_a] != self.sample_identity[self.mated_b]):
            raise ValueError("a mated comparison joins photos of two identities")
        # A mated comparison is drawn with its identity, as often as that identity is.
        self.pair_identity = self.sample_identity[self.mated_a]
        if len(self.sample_identity) and self.sample_identity.max() >= identity_count:
            raise ValueError("a photo's identity index is out of range")

    def paucs(
        self,
        qualities: np.ndarray,
        thresholds: Sequence[float],
        counts: np.ndarray,
        max_discard: float,
    ) -> np.ndarray:
        """len(thresholds) x draws: the pAUC up to `max_discard` of each draw (a row of
        `counts`) at each threshold; NaN for a draw without a mated comparison."""
        cells = _Cells.of(self, qualities, thresholds)
        counts = np.asarray(counts)
        step = max(1, _CHUNK_CELLS // max(1, len(cells.identity)))
        return np.concatenate(
            [
                cells.paucs(counts[start : start + step], max_discard)
                for start in range(0, len(counts), step)
            ],
            axis=1,
        )


@dataclass(frozen=True)
class _Cells:
    """Photos, mated comparisons and false non-matches per (identity, quality level) cell,
    cells in ascending level order: a draw's EDC needs no finer detail."""

    identity: np.ndarray  # per cell
    photos: np.ndarray  # per cell
    comparisons: np.ndarray  # per cell
    failures: np.ndarray  # thresholds x cells
    level_end: np.ndarray  # per level: one past its last cell

    @staticmethod
    def of(
        resampler: IdentityResampler, qualities: np.ndarray, thresholds: Sequence[float]
    ) -> _Cells:
        qualities = np.asarray(qualities, dtype=np.float64)
        if np.isnan(qualities).any():
            raise ValueError("qualities contain NaN; give failed samples -inf instead")
        if len(qualities) != len(resampler.sample_identity):
            raise ValueError("one quality per photo is needed")
        levels, sample_level = np.unique(qualities, return_inverse=True)
        # A comparison goes when its lower-quality photo does (edc.edc_curve's rule).
        pair_level = np.minimum(sample_level[resampler.mated_a], sample_level[resampler.mated_b])
        level_count = len(levels)
        # Cells keyed level-major, so that sorted keys run in ascending level order.
        sample_key = sample_level * resampler.identity_count + resampler.sample_identity
        pair_key = pair_level * resampler.identity_count + resampler.pair_identity
        keys, inverse = np.unique(np.concatenate([sample_key, pair_key]), return_inverse=True)
        sample_cell, pair_cell = inverse[: len(sample_key)], inverse[len(sample_key) :]
        failed = (
            resampler.mated_scores[None, :] <= np.asarray(thresholds, dtype=np.float64)[:, None]
        )
        cell_count = len(keys)
        return _Cells(
            identity=keys % resampler.identity_count,
            photos=np.bincount(sample_cell, minlength=cell_count).astype(np.float64),
            comparisons=np.bincount(pair_cell, minlength=cell_count).astype(np.float64),
            failures=np.array(
                [np.bincount(pair_cell, weights=row, minlength=cell_count) for row in failed]
            ).reshape(len(failed), cell_count),
            level_end=np.searchsorted(
                keys // resampler.identity_count, np.arange(level_count), "right"
            ),
        )

    def paucs(self, counts: np.ndarray, max_discard: float) -> np.ndarray:
        weights = counts[:, self.identity].astype(np.float64)  # draws x cells
        discarded = _after_each_level(weights * self.photos, self.level_end)
        starts = discarded / discarded[:, -1:]
        ends = np.concatenate([starts[:, 1:], np.full((len(starts), 1), np.inf)], axis=1)
        widths = np.clip(np.minimum(ends, max_discard) - starts, 0.0, None)
        gone = _after_each_level(weights * self.comparisons, self.level_end)
        remaining = gone[:, -1:] - gone
        defined = remaining > 0
        # Remaining comparisons only fall, so the defined points are a prefix; after it the
        # curve holds its last defined FNMR (edc.EdcCurve.area's rule).
        last = np.maximum(defined.sum(axis=1) - 1, 0)
        rows = np.arange(len(counts))
        areas = []
        for failures in self.failures:
            failed = _after_each_level(weights * failures, self.level_end)
            errors = failed[:, -1:] - failed
            with np.errstate(invalid="ignore", divide="ignore"):
                fnmr = errors / remaining
            fnmr = np.where(defined, fnmr, fnmr[rows, last][:, None])
            area = np.sum(widths * fnmr, axis=1)
            areas.append(np.where(defined[:, 0], area, np.nan))
        return np.array(areas)


def _after_each_level(values: np.ndarray, level_end: np.ndarray) -> np.ndarray:
    """draws x (levels + 1): 0, then the sum of `values` over the cells up to each level."""
    cumulative = np.cumsum(values, axis=1)
    return np.concatenate([np.zeros((len(values), 1)), cumulative[:, level_end - 1]], axis=1)


def interval(values: np.ndarray) -> tuple[float, float]:
    """The central `INTERVAL` percentile interval of bootstrap values (NaN draws left out)."""
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    if not len(values):
        return float("nan"), float("nan")
    tail = 100 * (1 - INTERVAL) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_paucs(
    qualities: Mapping[str, np.ndarray],
    comparisons: Comparisons,
    identities: Sequence[str],
    fmrs: Sequence[float],
    max_discard: float,
    draws: int,
    rng: np.random.Generator,
) -> dict[tuple[str, float], np.ndarray]:
    """(method, FMR) -> the pAUC of each of `draws` draws of identities, the same draws for
    every method and FMR; `identities` names each photo's."""
    names = sorted(set(identities))
    counts = draw_identities(len(names), draws, rng)
    resampler = IdentityResampler(
        identity_indices(identities, names),
        comparisons.mated_a,
        comparisons.mated_b,
        comparisons.mated_scores,
        len(names),
    )
    thresholds = [comparisons.non_mated.threshold(fmr) for fmr in fmrs]
    drawn = {}
    for method, method_qualities in qualities.items():
        paucs = resampler.paucs(method_qualities, thresholds, counts, max_discard)
        drawn.update(((method, fmr), row) for fmr, row in zip(fmrs, paucs, strict=True))
    return drawn
