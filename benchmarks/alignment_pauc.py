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
from fiqa_cli.evaluation.bootstrap import (
    IdentityResampler,
    draw_identities,
    identity_indices,
    interval,
)
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
        [root],
        options,
        pairs_file=None,
        max_fmr=max(FMRS),
        progress=lambda message: print(f"{detector}: {message}", file=sys.stderr),
    )
    model = build_quality_model(None, [CPU])
    crops = list(photos.evaluation_set.crops)
    qualities = model.predict_batched(crops, 32)
    return photos, qualities


def fnmr(photos: LabelledPhotos, threshold: float) -> float:
    return float(np.mean(photos.comparisons.mated_scores <= threshold))


def resampler(photos: LabelledPhotos, names: list[str]) -> IdentityResampler:
    """One detector's photos, their identities indexed into the names of both detectors'."""
    identities = [sample.identity for sample in photos.evaluation_set.samples]
    comparisons = photos.comparisons
    return IdentityResampler(
        identity_indices(identities, names),
        comparisons.mated_a,
        comparisons.mated_b,
        comparisons.mated_scores,
        len(names),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="held-out ROOT/IDENTITY/*.jpg")
    add_shared_argument(parser)
    parser.add_argument("--max-images-per-id", type=int)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    runs = {detector: measured(args.root, detector, args) for detector in DETECTORS}
    # An identity with no face found by one detector is drawn all the same: it brings nothing
    # to that detector's set.
    names = sorted(
        {s.identity for photos, _ in runs.values() for s in photos.evaluation_set.samples}
    )
    counts = draw_identities(len(names), args.bootstrap, np.random.default_rng(args.seed))
    # Draw 0 takes every identity once: the full set's pAUC.
    counts = np.vstack([np.ones((1, len(names)), dtype=np.int64), counts])
    thresholds = {
        d: [runs[d][0].comparisons.non_mated.threshold(f) for f in FMRS] for d in DETECTORS
    }
    paucs = {
        d: resampler(runs[d][0], names).paucs(runs[d][1], thresholds[d], counts, MAX_DISCARD)
        for d in DETECTORS
    }
    full = {d: paucs[d][:, 0] for d in DETECTORS}
    rows = []
    for index, fmr in enumerate(FMRS):
        low, high = interval(paucs["yunet"][index, 1:] - paucs["mtcnn"][index, 1:])
        rows.append(
            [
                f"{fmr:g}",
                " / ".join(f"{fnmr(runs[d][0], thresholds[d][index]):.4f}" for d in DETECTORS),
                " / ".join(f"{full[d][index]:.5f}" for d in DETECTORS),
                f"{full['yunet'][index] - full['mtcnn'][index]:+.5f}",
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
