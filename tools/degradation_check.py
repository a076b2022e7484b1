"""Median quality of aligned faces under synthetic degradations of increasing strength.

For each degradation kind of `fiqa_cli.synthetic` and each strength, every face (the largest in
each of the first photos by name, detected and aligned once, as `fiqa evaluate` does) is degraded
in its aligned crop and scored; the table gives the median quality per strength, whether the
medians fall monotonically, and the Spearman rank correlation between strength and quality over
all (face, strength) scores.

    python tools/degradation_check.py runs/lfw-split/heldout --limit 200
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from fiqa_cli.detect import create_detector
from fiqa_cli.evaluation_set import identity_samples, prepare_faces
from fiqa_cli.options import CENTRAL_FACE, LARGEST_FACE
from fiqa_cli.paths import default_model_path
from fiqa_cli.quality_model import QualityModel
from fiqa_cli.synthetic import DEGRADATIONS, degradation_parameter, degrade

STRENGTHS = (0.0, 0.25, 0.5, 0.75, 1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="ROOT/IDENTITY/*.jpg photos")
    parser.add_argument("--model", type=Path, default=default_model_path())
    parser.add_argument("--limit", type=int, default=200, help="photos to use (first by name)")
    parser.add_argument("--detector", default="mtcnn")
    parser.add_argument("--faces", choices=(LARGEST_FACE, CENTRAL_FACE), default=LARGEST_FACE)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    model = QualityModel(args.model, ["CPUExecutionProvider"])
    samples = identity_samples(args.root, min_images=1, limit_ids=None)[: args.limit]
    detector = create_detector(args.detector, providers=["CPUExecutionProvider"])
    crops = list(prepare_faces(samples, detector, print, args.faces)[0].crops)
    print(f"{len(crops)} faces from {args.root}, model {args.model.name}")
    print(
        f"{'degradation':<14} " + " ".join(f"{s:>7.2f}" for s in STRENGTHS) + "  monotone  spearman"
    )
    for kind in DEGRADATIONS:
        rng = np.random.default_rng(args.seed)
        scores = np.stack(
            [model.predict([degrade(c, kind, s, rng=rng) for c in crops]) for s in STRENGTHS]
        )
        medians = np.median(scores, axis=1)
        monotone = bool(np.all(np.diff(medians) < 0))
        rho = spearmanr(np.repeat(STRENGTHS, len(crops)), scores.ravel()).statistic
        print(
            f"{kind:<14} "
            + " ".join(f"{m:7.3f}" for m in medians)
            + f"  {monotone!s:>8}  {rho:8.3f}"
        )
        parameters = ", ".join(f"{degradation_parameter(kind, s):g}" for s in STRENGTHS)
        print(f"{'':<14} parameter: {parameters}")


if __name__ == "__main__":
    main()
