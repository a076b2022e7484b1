"""Error-versus-Discard Characteristic (EDC, also called ERC) of quality scores.

The protocol of the CR-FIQA paper, with every tie handled by an explicit rule:

- Comparison scores are similarities; a comparison is a match when its score is strictly above
  the decision threshold.
- The threshold for a target FMR is fixed once, on all non-mated comparisons: with N of them
  and k = floor(FMR * N), it is the (k+1)-th highest non-mated score. At most k non-mated
  scores lie strictly above it, so the achieved FMR never exceeds the target, ties included.
- Samples are discarded by quality threshold: at level q every sample with quality <= q goes,
  so samples with equal quality are always discarded together. The discard fraction is the
  fraction of samples discarded, and the curve has one point per distinct quality value
  (plus the point "nothing discarded").
- A mated comparison remains while both of its samples remain, i.e. while the lower of its
  two qualities is above q. FNMR is over the remaining mated comparisons; levels that leave
  none are not points of the curve.
- Between two achievable discard fractions the curve holds the FNMR of the lower one (the most
  one can discard without exceeding the fraction), and after the last point it holds that
  point's FNMR. pAUC and AUC are exact integrals of this step function, not normalised: the
  pAUC up to discard fraction d is at most d times the largest FNMR on the way.

Failed samples belong at the bottom of the ranking: give them quality -inf. NaN is refused
because it has no place in an order.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

# floor(FMR * N) must not lose a whole comparison to rounding (1e-3 * 1000 may be 0.999...).
_FLOOR_SLACK = 1e-9


@dataclass(frozen=True)
class NonMatedTail:
    """The highest non-mated scores (descending) out of `count`: all a threshold needs."""

    scores_desc: np.ndarray
    count: int

    def threshold(self, fmr: float) -> float:
        """The decision threshold whose FMR is at most `fmr` (see the module docstring)."""
        if not 0.0 < fmr < 1.0:
            raise ValueError(f"target FMR must lie in (0, 1), got {fmr}")
        if self.count == 0:
            raise ValueError("no non-mated comparisons to set a threshold on")
        rank = self.rank(fmr)
        if rank >= len(self.scores_desc):
            raise ValueError(
                f"tail keeps {len(self.scores_desc)} scores, FMR {fmr} needs {rank + 1}"
            )
        return float(self.scores_desc[rank])

    def rank(self, fmr: float) -> int:
        """k = floor(fmr * N): how many non-mated scores may lie above the threshold."""
        return math.floor(fmr * self.count + _FLOOR_SLACK)

    def resolves(self, fmr: float) -> bool:
        """Whether there are enough non-mated comparisons for even one to be a false match."""
        return self.rank(fmr) >= 1


def tail_size(count: int, max_fmr: float) -> int:
    """How many of `count` non-mated scores a threshold at any FMR <= `max_fmr` can reach."""
    return min(count, math.floor(max_fmr * count + _FLOOR_SLACK) + 1)


def non_mated_tail(scores: np.ndarray, keep: int | None = None) -> NonMatedTail:
    """The `keep` highest of `scores` (all of them by default)."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    keep = len(scores) if keep is None else keep
    return NonMatedTail(_top_desc(scores, keep), len(scores))


def _top_desc(scores: np.ndarray, keep: int) -> np.ndarray:
    if keep < len(scores):
        scores = np.partition(scores, len(scores) - keep)[len(scores) - keep :]
    return np.sort(scores)[::-1]


@dataclass(frozen=True)
class Comparisons:
    """Mated comparisons as sample index pairs with scores, and the non-mated tail."""

    mated_a: np.ndarray
    mated_b: np.ndarray
    mated_scores: np.ndarray
    non_mated: NonMatedTail


def all_pairs_comparisons(
    embeddings: np.ndarray, labels: np.ndarray, max_fmr: float, chunk_rows: int = 1024
) -> Comparisons:
    """Compare every pair of samples: same label is mated, different labels non-mated.

    `embeddings` are L2-normalised rows, so scores are cosine similarities. Only the non-mated
    scores a threshold at FMR <= `max_fmr` can reach are kept, which bounds memory to a
    chunk of the similarity matrix plus that tail.
    """
    embeddings = np.asarray(embeddings, dtype=np.float32)
    labels = np.asarray(labels)
    label_counts = np.unique(labels, return_counts=True)[1]
    n = len(labels)
    mated_count = int(np.sum(label_counts * (label_counts - 1) // 2))
    non_mated_count = n * (n - 1) // 2 - mated_count
    keep = tail_size(non_mated_count, max_fmr)

    mated_a, mated_b, mated_scores = [], [], []
    tail = np.empty(0)
    cols = np.arange(n)
    for rows, scores in _upper_triangle_chunks(embeddings, chunk_rows):
        upper = cols[None, :] > rows[:, None]
        same = labels[rows][:, None] == labels[None, :]
        a, b = np.nonzero(upper & same)
        mated_a.append(rows[a])
        mated_b.append(b)
        mated_scores.append(scores[a, b])
        tail = _top_desc(np.concatenate([tail, scores[upper & ~same]]), keep)
    return Comparisons(
        np.concatenate(mated_a),
        np.concatenate(mated_b),
        np.concatenate(mated_scores).astype(np.float64),
        NonMatedTail(tail, non_mated_count),
    )


def _upper_triangle_chunks(
    embeddings: np.ndarray, chunk_rows: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    for start in range(0, len(embeddings), chunk_rows):
        rows = np.arange(start, min(start + chunk_rows, len(embeddings)))
        yield rows, embeddings[rows] @ embeddings.T


def pair_comparisons(
    embeddings: np.ndarray,
    mated_pairs: np.ndarray,
    non_mated_pairs: np.ndarray,
) -> Comparisons:
    """Compare listed pairs only (each an Mx2 array of sample indices), as in LFW's pairs files."""
    mated_pairs = np.asarray(mated_pairs, dtype=np.int64).reshape(-1, 2)
    non_mated_pairs = np.asarray(non_mated_pairs, dtype=np.int64).reshape(-1, 2)
    return Comparisons(
        mated_pairs[:, 0],
        mated_pairs[:, 1],
        _pair_scores(embeddings, mated_pairs),
        non_mated_tail(_pair_scores(embeddings, non_mated_pairs)),
    )


def _pair_scores(embeddings: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    scores = np.einsum("ij,ij->i", embeddings[pairs[:, 0]], embeddings[pairs[:, 1]])
    return scores.astype(np.float64)


@dataclass(frozen=True)
class EdcCurve:
    """FNMR against the fraction of samples discarded, one point per achievable fraction."""

    discard_fractions: np.ndarray
    fnmr: np.ndarray
    remaining_mated: np.ndarray

    @property
    def fnmr_without_discard(self) -> float:
        return float(self.fnmr[0])

    def area(self, max_discard: float) -> float:
        """Integral of the step-function curve over discard fractions [0, `max_discard`]."""
        starts = self.discard_fractions
        ends = np.append(starts[1:], np.inf)
        widths = np.clip(np.minimum(ends, max_discard) - starts, 0.0, None)
        return float(np.sum(widths * self.fnmr))


def edc_curve(
    qualities: np.ndarray,
    mated_a: np.ndarray,
    mated_b: np.ndarray,
    mated_scores: np.ndarray,
    threshold: float,
) -> EdcCurve:
    """The EDC of per-sample `qualities` for mated comparisons (a, b) at a fixed threshold."""
    qualities = np.asarray(qualities, dtype=np.float64)
    if np.isnan(qualities).any():
        raise ValueError("qualities contain NaN; give failed samples -inf instead")
    if len(mated_scores) == 0:
        raise ValueError("no mated comparisons")
    pair_quality = np.minimum(qualities[mated_a], qualities[mated_b])
    false_non_match = np.asarray(mated_scores) <= threshold

    # Discarding at the lowest level already removes that level's samples, so "nothing
    # discarded" is a point of its own before the first level.
    levels = np.unique(qualities)
    sorted_qualities = np.sort(qualities)
    discarded = np.concatenate([[0], np.searchsorted(sorted_qualities, levels, side="right")])
    remaining = _count_above(pair_quality, levels, initial=len(pair_quality))
    errors = _count_above(pair_quality[false_non_match], levels, initial=int(false_non_match.sum()))

    defined = remaining > 0
    return EdcCurve(
        discarded[defined] / len(qualities),
        errors[defined] / remaining[defined],
        remaining[defined],
    )


def _count_above(values: np.ndarray, levels: np.ndarray, initial: int) -> np.ndarray:
    """`initial`, then for each level how many `values` lie strictly above it."""
    above = len(values) - np.searchsorted(np.sort(values), levels, side="right")
    return np.concatenate([[initial], above])
