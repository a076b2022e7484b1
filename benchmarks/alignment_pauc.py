"""Does YuNet + O-Net alignment cost the default model accuracy (issue 21, the `auto` choice)?

The held-out identities are detected and aligned once per detector (MTCNN, YuNet + O-Net), the
crops embedded by `mobilefacenet_eval.onnx` and scored by the default model; then, per
detector, FNMR without discarding and the EDC pAUC (0-20% discard) at each FMR, and the paired
bootstrap over identities of the pAUC difference (yunet - mtcnn): identities drawn with
replacement, each draw bringing its photos and its mated comparisons under both detectors, the
thresholds held at those of the full set. A 95% interval that holds 0 means the two alignments
are not told apart by these photos.

    python tools/split_identities.py ../shared/data/lfw-devtrain/images runs/lfw-split
    python benchmarks/alignment_pauc.py runs/lfw-split/heldout [--max-images-per-id 10]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from common import add_shared_argument, print_table

from fiqa_cli.choices import CENTRAL_FACE, CPU
from fiqa_cli.evaluation.edc import edc_curve
from fiqa_cli.evaluation.labelled_photos import LabelledPhotos, PhotoOptions, labelled_photos
from fiqa_cli.runtime.build import build_quality_model

DETECTORS = ("mtcnn", "yunet")
FMRS = (1e-3, 1e-4)
MAX_DISCARD = 0.2


def measured(
    root: Path, detector: str, args: argparse.Namespace
) -> tuple[LabelledPhotos, np.ndarray]:
    options = PhotoOptions(
        fr_model=args.shared / "models" / "mobilefacenet_eval.onnx",
        detector=detector,
        faces=CENTRAL_FACE,
        device="cpu",
        max_images_per_id=args.max_images_per_id,
    )
    photos = labelled_photos(
        root,
        options,
        pairs_file=None,
        max_fmr=max(FMRS),
        progress=lambda message: print(f"{detector}: {message}", file=sys.stderr),
    )
    model = build_quality_model(None, [CPU])
    crops = list(photos.evaluation_set.crops)
    qualities = model.predict_batched(crops, 32)
    return photos, qualities


class Resampler:
    """pAUC of one detector's photos for any multiset of identities."""

    def __init__(self, photos: LabelledPhotos, qualities: np.ndarray, fmr: float) -> None:
        identities = np.array([s.identity for s in photos.evaluation_set.samples])
        self.names = sorted(set(identities))
        self.threshold = photos.comparisons.non_mated.threshold(fmr)
        comparisons = photos.comparisons
        self.scores = comparisons.mated_scores
        owner = identities[comparisons.mated_a]
        # Per identity: its photos' qualities, and its mated pairs in local indices.
        self.parts = {}
        for name in self.names:
            samples = np.flatnonzero(identities == name)
            local = np.full(len(identities), -1)
            local[samples] = np.arange(len(samples))
            pairs = np.flatnonzero(owner == name)
            self.parts[name] = (
                qualities[samples],
                local[comparisons.mated_a[pairs]],
                local[comparisons.mated_b[pairs]],
                self.scores[pairs],
            )

    def pauc(self, drawn: list[str]) -> float:
        qualities, a, b, scores = [], [], [], []
        offset = 0
        for name in drawn:
            part = self.parts.get(name)
            if part is None:  # no photo of this identity yielded a face with this detector
                continue
            qualities.append(part[0])
            a.append(part[1] + offset)
            b.append(part[2] + offset)
            scores.append(part[3])
            offset += len(part[0])
        curve = edc_curve(
            np.concatenate(qualities),
            np.concatenate(a),
            np.concatenate(b),
            np.concatenate(scores),
            self.threshold,
        )
        return curve.area(MAX_DISCARD)

    def fnmr(self) -> float:
        return float(np.mean(self.scores <= self.threshold))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="held-out ROOT/IDENTITY/*.jpg")
    add_shared_argument(parser)
    parser.add_argument("--max-images-per-id", type=int)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    runs = {detector: measured(args.root, detector, args) for detector in DETECTORS}
    rows = []
    rng = np.random.default_rng(args.seed)
    for fmr in FMRS:
        resamplers = {d: Resampler(*runs[d], fmr) for d in DETECTORS}
        names = sorted(set().union(*(r.names for r in resamplers.values())))
        full = {d: r.pauc(names) for d, r in resamplers.items()}
        differences = []
        for _ in range(args.bootstrap):
            drawn = list(rng.choice(names, size=len(names), replace=True))
            differences.append(resamplers["yunet"].pauc(drawn) - resamplers["mtcnn"].pauc(drawn))
        low, high = np.percentile(differences, [2.5, 97.5])
        rows.append(
            [
                f"{fmr:g}",
                " / ".join(f"{resamplers[d].fnmr():.4f}" for d in DETECTORS),
                " / ".join(f"{full[d]:.5f}" for d in DETECTORS),
                f"{full['yunet'] - full['mtcnn']:+.5f}",
                f"[{low:+.5f}, {high:+.5f}]",
            ]
        )
    print_table(
        [
            "FMR",
            "FNMR at 0% discard, mtcnn / yunet",
            f"pAUC 0-{MAX_DISCARD:.0%}, mtcnn / yunet",
            "yunet - mtcnn",
            f"95% bootstrap interval ({args.bootstrap} draws of identities)",
        ],
        rows,
    )
    for detector in DETECTORS:
        photos = runs[detector][0]
        print(
            f"{detector}: {len(photos.evaluation_set.samples)} photos with a face, "
            f"{len(photos.comparisons.mated_scores)} mated comparisons"
        )


if __name__ == "__main__":
    main()
