"""How fast is `fiqa evaluate --bootstrap` (issue 33)? Draws per second of the identity
bootstrap on a synthetic set the size of a held-out evaluation, for every method and FMR at once
as the command runs it (two --scores files and the seven baselines, FMR 1e-2, 1e-3 and 1e-4).

Photos per identity follow LFW's shape (most identities have a few, one has hundreds: mated
comparisons grow with its square), embeddings are an identity's centre plus noise, compared by
the command's own all-pairs code. The time depends on the number of photos, not of comparisons.

    python benchmarks/bootstrap.py [--photos 3000] [--draws 1000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from common import print_table

from fiqa_cli.evaluation.bootstrap import bootstrap_paucs
from fiqa_cli.evaluation.edc import all_pairs_comparisons

FMRS = (1e-2, 1e-3, 1e-4)
METHODS = 9  # two --scores files and the seven baselines
MAX_DISCARD = 0.2


def synthetic_set(photos: int, largest: int, rng: np.random.Generator):
    """Identities of 2-6 photos, and one of `largest`, up to `photos`; their comparisons."""
    sizes = [largest]
    while sum(sizes) < photos:
        sizes.append(int(rng.integers(2, 7)))
    labels = np.repeat([f"id{index:05d}" for index in range(len(sizes))], sizes)[:photos]
    centres = rng.normal(size=(len(sizes), 128))
    _, index = np.unique(labels, return_inverse=True)
    embeddings = centres[index] + 0.9 * rng.normal(size=(len(labels), 128))
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    return labels, all_pairs_comparisons(embeddings, labels, max(FMRS))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=3000)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    rows = []
    for largest in (6, 530):
        labels, comparisons = synthetic_set(args.photos, largest, rng)
        qualities = {f"method{k}": rng.normal(size=len(labels)) for k in range(METHODS)}
        started = time.perf_counter()
        bootstrap_paucs(qualities, comparisons, list(labels), FMRS, MAX_DISCARD, args.draws, rng)
        seconds = time.perf_counter() - started
        rows.append(
            [
                f"{len(labels)}",
                f"{len(set(labels))}",
                f"{largest}",
                f"{len(comparisons.mated_scores)}",
                f"{METHODS} x {len(FMRS)}",
                f"{args.draws}",
                f"{seconds:.1f}",
                f"{args.draws / seconds:.0f}",
            ]
        )
    print_table(
        [
            "photos",
            "identities",
            "largest identity",
            "mated comparisons",
            "methods x FMRs",
            "draws",
            "seconds",
            "draws/s",
        ],
        rows,
    )


if __name__ == "__main__":
    main()
