"""Median quality of aligned faces under synthetic degradations of increasing strength.

For each degradation kind of `fiqa_cli.runtime.degrade` and each strength, every face (the largest
in each of the first photos by name, detected and aligned once, as `fiqa evaluate` does) is degraded
in its aligned crop and scored; the table gives the median quality per strength, whether the
medians fall monotonically, and the Spearman rank correlation between strength and quality over
all (face, strength) scores.

With --fr-model, a second table sets each level's effect on recognition beside its effect on the
score: the median cosine between a face's clean and degraded embeddings under that FR model, the
median of each face's own quality change, and the share of faces whose quality fell. A degradation
that barely moves the embedding gives a certainty-ratio model little reason to lower its score.

Score differences between mild levels can be a thousandth, as small as the median's sampling
noise over a few hundred faces: judge monotonicity on all the photos (the default), not a sample.

    python tools/degradation_check.py runs/lfw-split/heldout \
        --fr-model ../shared/models/mobilefacenet_eval.onnx
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from fiqa_cli.choices import CENTRAL_FACE, LARGEST_FACE
from fiqa_cli.evaluation.recognition import FaceRecognizer
from fiqa_cli.evaluation.samples import identity_samples, prepare_faces
from fiqa_cli.paths import default_model_path
from fiqa_cli.runtime.degrade import (
    DEGRADATIONS,
    degradation_parameter,
    degradation_strength,
    degrade,
)
from fiqa_cli.runtime.detect import create_detector
from fiqa_cli.runtime.named_models import model_file
from fiqa_cli.runtime.quality_model import QualityModel

STRENGTHS = (0.0, 0.25, 0.5, 0.75, 1.0)
# LFW photos are quality-75 JPEGs already, so milder levels re-apply what is there: JPEG is
# judged (issue 20) on its own levels from quality 50 down to 5, the clean crop not among them.
JPEG_JUDGED_QUALITIES = (50, 39, 28, 16, 5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="ROOT/IDENTITY/*.jpg photos")
    parser.add_argument(
        "--model",
        type=model_file,
        default=default_model_path(),
        help="a shipped model's name (default, v5) or an ONNX file",
    )
    parser.add_argument("--limit", type=int, help="only the first photos by name (default: all)")
    parser.add_argument("--detector", default="mtcnn")
    parser.add_argument("--faces", choices=(LARGEST_FACE, CENTRAL_FACE), default=LARGEST_FACE)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fr-model", type=Path, help="ArcFace-style ONNX model (see above)")
    args = parser.parse_args()

    model = QualityModel(args.model, ["CPUExecutionProvider"])
    samples = identity_samples(args.root, min_images=1, limit_ids=None)[: args.limit]
    detector = create_detector(args.detector, providers=["CPUExecutionProvider"])
    crops = list(prepare_faces(samples, detector, print, args.faces)[0].crops)
    print(f"{len(crops)} faces from {args.root}, model {args.model.name}")
    print(
        f"{'degradation':<14} " + " ".join(f"{s:>7.2f}" for s in STRENGTHS) + "  monotone  spearman"
    )
    clean_scores = model.predict(crops)
    degraded = {
        kind: degraded_levels(crops, kind, STRENGTHS[1:], args.seed) for kind in DEGRADATIONS
    }
    all_scores = {
        kind: np.stack([clean_scores, *(model.predict(level) for level in levels)])
        for kind, levels in degraded.items()
    }
    for kind, scores in all_scores.items():
        print_trend(kind, STRENGTHS, scores)
        parameters = ", ".join(f"{degradation_parameter(kind, s):g}" for s in STRENGTHS)
        print(f"{'':<14} parameter: {parameters}")
    print_jpeg_judged(model, crops, args.seed)
    if args.fr_model:
        levels = ", ".join(f"{s:g}" for s in STRENGTHS[1:])
        print(f"\nper strength {levels}, with {args.fr_model.name}:")
        print_recognition_effect(FaceRecognizer(args.fr_model), crops, degraded, all_scores)


def degraded_levels(
    crops: list[np.ndarray], kind: str, strengths: tuple[float, ...], seed: int
) -> list[list[np.ndarray]]:
    """Every crop degraded by `kind` at each of `strengths`."""
    rng = np.random.default_rng(seed)
    return [[degrade(crop, kind, strength, rng=rng) for crop in crops] for strength in strengths]


def print_jpeg_judged(model: QualityModel, crops: list[np.ndarray], seed: int) -> None:
    strengths = tuple(degradation_strength("jpeg", q) for q in JPEG_JUDGED_QUALITIES)
    levels = degraded_levels(crops, "jpeg", strengths, seed)
    qualities = " ".join(f"{q:>7}" for q in JPEG_JUDGED_QUALITIES)
    print(f"\nJPEG as judged, quality {qualities}")
    print_trend("jpeg 50->5", strengths, np.stack([model.predict(level) for level in levels]))


def print_trend(label: str, strengths: tuple[float, ...], scores: np.ndarray) -> None:
    """One table row: the median score per strength (`scores`: strengths x faces), whether the
    medians fall strictly, and the Spearman correlation of strength with every score."""
    medians = np.median(scores, axis=1)
    monotone = bool(np.all(np.diff(medians) < 0))
    rho = spearmanr(np.repeat(strengths, scores.shape[1]), scores.ravel()).statistic
    print(
        f"{label:<14} " + " ".join(f"{m:7.3f}" for m in medians) + f"  {monotone!s:>8}  {rho:8.3f}"
    )


def print_recognition_effect(
    recognizer: FaceRecognizer,
    crops: list[np.ndarray],
    degraded: dict[str, list[list[np.ndarray]]],
    scores: dict[str, np.ndarray],
) -> None:
    print("median FR cosine clean vs degraded, median quality change, share of faces that fell")
    clean = recognizer.embed(np.stack(crops))
    for kind, levels in degraded.items():
        cells = []
        for level, level_scores in zip(levels, scores[kind][1:], strict=True):
            cosines = (recognizer.embed(np.stack(level)) * clean).sum(axis=1)
            change = level_scores - scores[kind][0]
            cells.append(
                f"{np.median(cosines):.3f} {np.median(change):+.4f} {np.mean(change < 0):.2f}"
            )
        print(f"{kind:<14} " + " | ".join(cells))


if __name__ == "__main__":
    main()
