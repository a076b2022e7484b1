"""Median quality of aligned faces under synthetic degradations of increasing strength.

For each degradation kind of `fiqa_cli.synthetic` and each strength, every face (detected and
aligned once, from the original photo) is degraded in its aligned crop and scored; the table gives
the median quality per strength, whether the medians fall monotonically, and the Spearman rank
correlation between strength and quality over all (face, strength) scores.

    python tools/degradation_check.py runs/lfw-split/heldout --limit 200
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from fiqa_cli.align import align_face
from fiqa_cli.decode import read_image
from fiqa_cli.detect import create_detector
from fiqa_cli.image_files import identity_images
from fiqa_cli.paths import default_model_path
from fiqa_cli.quality_model import QualityModel
from fiqa_cli.synthetic import DEGRADATIONS, degradation_parameter, degrade

STRENGTHS = (0.0, 0.25, 0.5, 0.75, 1.0)


def aligned_faces(root: Path, limit: int, detector_name: str) -> list[np.ndarray]:
    detector = create_detector(detector_name, providers=["CPUExecutionProvider"])
    crops = []
    for _identity, paths in identity_images(root):
        for path in paths:
            image = read_image(path)
            faces = detector.detect(image)
            if faces:
                crops.append(align_face(image, faces[0].landmarks))
            if len(crops) == limit:
                return crops
    return crops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="ROOT/IDENTITY/*.jpg photos")
    parser.add_argument("--model", type=Path, default=default_model_path())
    parser.add_argument("--limit", type=int, default=200, help="faces to use")
    parser.add_argument("--detector", default="mtcnn")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    model = QualityModel(args.model, ["CPUExecutionProvider"])
    crops = aligned_faces(args.root, args.limit, args.detector)
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
