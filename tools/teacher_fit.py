"""How much of a CR teacher's target a trained quality model predicts, photo by photo.

A `--cr-teacher` run's quality loss says how far the head is from its targets on average; this
says how much of the targets' variation it follows. For the photos of ROOTS (a run's training
roots with its own cache folder, or held-out roots with a fresh one), it aligns each photo as
`fiqa train` does, computes the teacher's CR of the clean photo and of `--variants` degraded
variants exactly as training does (the same cached descriptors, the same degraded pixels), scores
the same pixels with MODEL, and prints per group: the target's mean and spread, the prediction's,
their Pearson and Spearman correlations, and R^2 of the best affine map from prediction to target
(the share of the target's variance the model follows, whatever its scale).

    python tools/teacher_fit.py runs/v8/lfw-split/train runs/v8/celeba-split/train \\
        --model runs/v8/fiqa_default.onnx --work runs/v8/run --variants 2 --faces central

On held-out roots the CR's NNCCS runs over the held-out identities only, and the descriptors are
centred on the held-out photos' mean: the target is the same kind of label, not the same values.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from scipy.stats import spearmanr

from fiqa_cli.choices import LARGEST_FACE
from fiqa_cli.export.image_folder import AlignedCropCache, read_crop_rgb
from fiqa_cli.export.multi_root import image_folders
from fiqa_cli.export.teacher_targets import (
    TeacherEmbeddingCache,
    photo_key,
    teacher_certainty_ratios,
    variant_pixels,
)
from fiqa_cli.export.train import TEACHER_CACHE
from fiqa_cli.runtime.providers import select_providers
from fiqa_cli.runtime.quality_model import QualityModel


def fit_row(name: str, target: np.ndarray, predicted: np.ndarray) -> str:
    pearson = float(np.corrcoef(target, predicted)[0, 1])
    spearman = float(spearmanr(target, predicted).statistic)
    return (
        f"{name:<9} {len(target):6d} {target.mean():8.4f} {target.std():8.4f} "
        f"{predicted.mean():8.4f} {predicted.std():8.4f} {pearson:8.3f} {spearman:8.3f} "
        f"{pearson**2:6.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("roots", type=Path, nargs="+", help="ROOT/IDENTITY/*.jpg roots")
    parser.add_argument("--model", type=Path, required=True, help="the quality model (ONNX)")
    parser.add_argument(
        "--work",
        type=Path,
        required=True,
        help="folder of aligned-crops/ and teacher-embeddings/ (a run's --out reuses its caches)",
    )
    parser.add_argument("--variants", type=int, default=2, help="degraded variants per photo")
    parser.add_argument("--teacher", default="dlib")
    parser.add_argument("--detector", default="mtcnn")
    parser.add_argument("--faces", default=LARGEST_FACE)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    crops = AlignedCropCache(args.work / "aligned-crops", args.detector, None, args.faces)
    dataset = image_folders(args.roots, crops, min_images_per_id=2)
    paths = [crop for crop, _ in dataset.samples]
    keys = [photo_key(path) for path in paths]
    labels = np.array([label for _, label in dataset.samples])
    cache = TeacherEmbeddingCache(args.work / TEACHER_CACHE, args.teacher)
    targets = teacher_certainty_ratios(
        cache.descriptors(paths, keys, args.variants), labels, "paper"
    )

    model = QualityModel(args.model, select_providers("cpu"))
    predicted = np.empty_like(targets)
    for variant in range(1 + args.variants):
        pixels = [
            cv2.cvtColor(variant_pixels(read_crop_rgb(path), key, variant), cv2.COLOR_RGB2BGR)
            for path, key in zip(paths, keys, strict=True)
        ]
        predicted[:, variant] = model.predict_batched(pixels, args.batch_size)

    print(f"{len(paths)} photos of {dataset.num_classes} identities, model {args.model}")
    print(
        f"{'variants':<9} {'n':>6} {'target':>8} {'std':>8} {'model':>8} {'std':>8} "
        f"{'pearson':>8} {'spearman':>8} {'R^2':>6}"
    )
    print(fit_row("clean", targets[:, 0], predicted[:, 0]))
    if args.variants:
        print(fit_row("degraded", targets[:, 1:].ravel(), predicted[:, 1:].ravel()))
        # Training shows degraded variants to 30% of samples; "all" weighs every variant alike.
        print(fit_row("all", targets.ravel(), predicted.ravel()))


if __name__ == "__main__":
    main()
