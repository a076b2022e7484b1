"""How much of a CR teacher's target a trained quality model predicts, photo by photo.

A `--cr-teacher` run's quality loss says how far the head is from its targets on average; this
says how much of the targets' variation it follows, and whether a better linear head on the same
embedding would follow more. For the photos of ROOTS (a run's training roots, with the run's
folder as `--work` so its caches are reused) it aligns each photo as `fiqa train` does, computes
the teacher's CR of the clean photo and of `--variants` degraded variants exactly as training
does (the same cached descriptors, the same degraded pixels), runs MODEL on the same pixels, and
prints per group: the target's mean and spread, the score's, their Pearson and Spearman
correlations, and R^2 = Pearson^2 (the share of the target's variance the score follows through
the best affine map, whatever its scale).

The linear probe: ridge regressions from MODEL's embedding (the input of its quality head) to
the target, fitted on every variant of ROOTS' photos; their R^2 against the model's own head says
whether the head or the embedding limits the fit. `--heldout` roots (with their own `--heldout-work`
folder; the teacher embeds what is not cached) are scored and probed too, without fitting on them.

    python tools/teacher_fit.py runs/v8/lfw-split/train runs/v8/celeba-split/train \\
        --model runs/v8/fiqa_default.onnx --work runs/v8/run --variants 2 --faces central \\
        --heldout runs/v8/lfw-split/heldout --heldout-work runs/v8/teacher-fit-heldout

On held-out roots the CR's NNCCS runs over the held-out identities only, and the descriptors are
centred on the held-out photos' mean: the target is the same kind of label, not the same values.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from scipy.stats import spearmanr

from fiqa_cli import model_contract
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
from fiqa_cli.runtime.providers import open_session, select_providers
from fiqa_cli.runtime.quality_model import QualityModel

RIDGE_PENALTIES = (1e-2, 1.0, 1e2, 1e4)


@dataclass
class Photos:
    """N photos' teacher targets (N x V, variant 0 clean) and the model's embeddings (N x V x D)
    and quality scores (N x V) of the same pixels."""

    identities: int
    targets: np.ndarray
    embeddings: np.ndarray
    scores: np.ndarray


class ModelRunner:
    """The model's embedding and quality of BGR crops in one run; QualityModel checks the model
    and preprocesses, a second session of the same file gives both outputs at once."""

    def __init__(self, model: Path) -> None:
        self.quality_model = QualityModel(model, select_providers("cpu"))
        self.session = open_session(model, select_providers("cpu"))
        self.input_name = self.session.get_inputs()[0].name
        self.outputs = [model_contract.EMBEDDING_OUTPUT, model_contract.QUALITY_OUTPUT]

    def run(self, crops_bgr: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        tensor = self.quality_model.preprocess(crops_bgr)
        embedding, quality = self.session.run(self.outputs, {self.input_name: tensor})
        return embedding, quality.reshape(-1)


def measure(
    roots: list[Path], work: Path, variants: int, runner: ModelRunner, args: argparse.Namespace
) -> Photos:
    crops = AlignedCropCache(work / "aligned-crops", args.detector, None, args.faces)
    dataset = image_folders(roots, crops, min_images_per_id=2)
    paths = [crop for crop, _ in dataset.samples]
    keys = [photo_key(path) for path in paths]
    labels = np.array([label for _, label in dataset.samples])
    cache = TeacherEmbeddingCache(work / TEACHER_CACHE, args.teacher)
    targets = teacher_certainty_ratios(cache.descriptors(paths, keys, variants), labels, "paper")

    embeddings, scores = [], []
    for variant in range(1 + variants):
        pixels = [
            cv2.cvtColor(variant_pixels(read_crop_rgb(path), key, variant), cv2.COLOR_RGB2BGR)
            for path, key in zip(paths, keys, strict=True)
        ]
        runs = [
            runner.run(pixels[start : start + args.batch_size])
            for start in range(0, len(pixels), args.batch_size)
        ]
        embeddings.append(np.concatenate([embedding for embedding, _ in runs]))
        scores.append(np.concatenate([quality for _, quality in runs]))
    return Photos(dataset.num_classes, targets, np.stack(embeddings, 1), np.stack(scores, 1))


def fit_row(name: str, target: np.ndarray, predicted: np.ndarray) -> str:
    pearson = float(np.corrcoef(target, predicted)[0, 1])
    spearman = float(spearmanr(target, predicted).statistic)
    return (
        f"{name:<18} {len(target):6d} {target.mean():8.4f} {target.std():8.4f} "
        f"{predicted.mean():8.4f} {predicted.std():8.4f} {pearson:8.3f} {spearman:8.3f} "
        f"{pearson**2:6.3f}"
    )


def print_fit(name: str, photos: Photos) -> None:
    print(
        f"{name}: {len(photos.targets)} photos of {photos.identities} identities\n"
        f"{'variants':<18} {'n':>6} {'target':>8} {'std':>8} {'model':>8} {'std':>8} "
        f"{'pearson':>8} {'spearman':>8} {'R^2':>6}"
    )
    print(fit_row("clean", photos.targets[:, 0], photos.scores[:, 0]))
    if photos.targets.shape[1] > 1:
        print(fit_row("degraded", photos.targets[:, 1:].ravel(), photos.scores[:, 1:].ravel()))
        # Training shows degraded variants to 30% of samples; "all" weighs every variant alike.
        print(fit_row("all", photos.targets.ravel(), photos.scores.ravel()))


def r_squared(target: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.corrcoef(target.ravel(), predicted.ravel())[0, 1] ** 2)


def print_probe(train: Photos, heldout: Photos | None) -> None:
    features = train.embeddings.reshape(-1, train.embeddings.shape[-1]).astype(np.float64)
    target = train.targets.ravel().astype(np.float64)
    feature_mean, target_mean = features.mean(axis=0), target.mean()
    centred = features - feature_mean
    gram, moment = centred.T @ centred, centred.T @ (target - target_mean)
    print("\nlinear probe on the embedding (R^2; fitted on every variant of the training photos)")
    print(f"{'head':<18} {'train clean':>12} {'train all':>10} {'held-out clean':>15}")

    def row(name: str, predict) -> None:
        held = r_squared(heldout.targets[:, 0], predict(heldout)[:, 0]) if heldout else None
        print(
            f"{name:<18} {r_squared(train.targets[:, 0], predict(train)[:, 0]):12.3f} "
            f"{r_squared(train.targets, predict(train)):10.3f} "
            + (f"{held:15.3f}" if held is not None else f"{'-':>15}")
        )

    row("the model's own", lambda photos: photos.scores)
    for penalty in RIDGE_PENALTIES:
        weights = np.linalg.solve(gram + penalty * np.eye(len(gram)), moment)
        row(
            f"ridge {penalty:g}",
            lambda photos, w=weights: (photos.embeddings - feature_mean) @ w + target_mean,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("roots", type=Path, nargs="+", help="ROOT/IDENTITY/*.jpg training roots")
    parser.add_argument("--model", type=Path, required=True, help="the quality model (ONNX)")
    parser.add_argument(
        "--work",
        type=Path,
        required=True,
        help="folder of aligned-crops/ and teacher-embeddings/ (a run's --out reuses its caches)",
    )
    parser.add_argument("--variants", type=int, default=2, help="degraded variants per photo")
    parser.add_argument("--heldout", type=Path, nargs="*", default=[], help="held-out roots")
    parser.add_argument("--heldout-work", type=Path, help="cache folder for the held-out roots")
    parser.add_argument("--teacher", default="dlib")
    parser.add_argument("--detector", default="mtcnn")
    parser.add_argument("--faces", default=LARGEST_FACE)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    if args.heldout and args.heldout_work is None:
        parser.error("--heldout needs --heldout-work (its own cache folder)")

    runner = ModelRunner(args.model)
    train = measure(args.roots, args.work, args.variants, runner, args)
    print(f"model {args.model}")
    print_fit("training roots", train)
    heldout = None
    if args.heldout:
        heldout = measure(args.heldout, args.heldout_work, 0, runner, args)
        print_fit("held-out roots", heldout)
    print_probe(train, heldout)


if __name__ == "__main__":
    main()
