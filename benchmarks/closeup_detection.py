"""Booth close-up detection benchmark (issues 7 and 21): how often each detector path finds a
face that fills 50-90% of the frame, how well its landmarks agree with those found on the
uncropped photo, and what a detection costs.

Close-ups are 400x480 crops of LFW devtrain photos, scaled so that the MTCNN face box of the
labelled person spans the framing fraction of the image height. Every detector path sees the
same close-ups; landmark agreement compares each path with its own detection on the uncropped
photo, measured in the pixels of the 112x112 aligned crop (worst of the five points).

    python benchmarks/closeup_detection.py [--shared PATH] [--images N] [--seed S]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from insightface import model_zoo

from fiqa_cli.model_contract import INPUT_SIZE
from fiqa_cli.runtime.boxes import transform_points
from fiqa_cli.runtime.decode import read_image
from fiqa_cli.runtime.detect import Detector, FaceDetector, create_detector
from fiqa_cli.runtime.providers import CPU
from fiqa_cli.runtime.scrfd import DETECTION_INPUT_SIZE, SCORE_THRESHOLD

REPO_ROOT = Path(__file__).resolve().parent.parent
# The close-ups are test material (tests/closeups.py), shared with the detection tests.
sys.path.insert(0, str(REPO_ROOT / "tests"))
from closeups import BOOTH_FRAMINGS, BOOTH_SIZE, booth_closeup, central_face, crop_distance  # noqa: E402

SCRFD_MODELS = {"500m": "scrfd_500m_bnkps.onnx", "2.5g": "scrfd_2.5g_bnkps.onnx"}


@dataclass(frozen=True)
class Photo:
    path: Path
    image: np.ndarray
    face_box: np.ndarray  # MTCNN box of the labelled person; sets the close-up framing


@dataclass(frozen=True)
class FramingResult:
    found: int
    total: int
    landmark_errors: list[float]  # crop pixels, one per found close-up with a reference
    seconds: list[float]  # detection time per close-up


class _ScrfdFirstPassOnly:
    """insightface's SCRFD at fiqa's input size and threshold, without fiqa's padded
    second pass (fiqa_cli.runtime.scrfd has no switch for it), to show what that pass adds."""

    def __init__(self, model_path: Path):
        self._model = model_zoo.get_model(str(model_path), providers=[CPU])
        self._model.prepare(ctx_id=0, input_size=DETECTION_INPUT_SIZE, det_thresh=SCORE_THRESHOLD)

    def detect(self, image_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._model.detect(image_bgr, input_size=DETECTION_INPUT_SIZE)


def main() -> None:
    args = _parse_args()
    lfw_images = args.shared / "data" / "lfw-devtrain" / "images"
    if not lfw_images.is_dir():
        raise SystemExit(f"LFW devtrain images not found under {args.shared} (use --shared)")
    photos = _sample_photos(lfw_images, args.images, args.seed)
    print(
        f"{len(photos)} LFW devtrain photos (seed {args.seed}), close-ups "
        f"{BOOTH_SIZE[0]}x{BOOTH_SIZE[1]}; landmark error in {INPUT_SIZE}x{INPUT_SIZE} crop pixels"
    )
    rows = []
    for label, detector in _detector_paths(args.shared / "models"):
        for framing, result in _measure(detector, photos).items():
            rows.append(_table_row(label, framing, result))
    _print_table(rows)


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_shared = os.environ.get("FIQA_SHARED", REPO_ROOT.parent / "shared")
    parser.add_argument("--shared", type=Path, default=Path(default_shared))
    parser.add_argument("--images", type=int, default=100, help="LFW photos to sample")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def _sample_photos(lfw_images: Path, count: int, seed: int) -> list[Photo]:
    """`count` random photos in which MTCNN finds the labelled person (to frame the close-up)."""
    framer = create_detector("mtcnn")
    paths = sorted(lfw_images.glob("*/*.jpg"))
    photos = []
    for index in np.random.default_rng(seed).permutation(len(paths)):
        image = read_image(paths[index])
        # the labelled person sits at the centre of the photo
        face = central_face(framer.detect(image), image.shape)
        if face is not None:
            photos.append(Photo(paths[index], image, face.bbox))
        if len(photos) == count:
            break
    return photos


def _detector_paths(models: Path) -> list[tuple[str, Detector]]:
    paths: list[tuple[str, Detector]] = [
        ("mtcnn", create_detector("mtcnn")),
        ("yunet (boxes) + O-Net (landmarks)", create_detector("yunet")),
    ]
    for size, file_name in SCRFD_MODELS.items():
        model_path = models / file_name
        with_second_pass = create_detector("scrfd", model_path)
        paths.append((f"scrfd {size} (fiqa, padded 2nd pass)", with_second_pass))
        first_pass = FaceDetector("scrfd", _ScrfdFirstPassOnly(model_path), model_path)
        paths.append((f"scrfd {size} (insightface, 1st pass only)", first_pass))
    return paths


def _measure(detector: Detector, photos: list[Photo]) -> dict[float, FramingResult]:
    references = [central_face(detector.detect(photo.image), photo.image.shape) for photo in photos]
    results = {}
    for framing in BOOTH_FRAMINGS:
        found, errors, seconds = 0, [], []
        for photo, reference in zip(photos, references, strict=True):
            closeup, to_closeup = booth_closeup(photo.image, photo.face_box, framing)
            start = time.perf_counter()
            faces = detector.detect(closeup)
            seconds.append(time.perf_counter() - start)
            if not faces:
                continue
            found += 1
            if reference is not None:
                from_closeup = cv2.invertAffineTransform(to_closeup)
                in_photo = transform_points(from_closeup, faces[0].landmarks)
                errors.append(crop_distance(reference.landmarks, in_photo))
        results[framing] = FramingResult(found, len(photos), errors, seconds)
    return results


def _table_row(label: str, framing: float, result: FramingResult) -> list[str]:
    errors = result.landmark_errors
    agreement = (
        [f"{np.median(errors):.2f}", f"{np.percentile(errors, 95):.2f}"] if errors else ["-", "-"]
    )
    return [
        label,
        f"{framing:.0%}",
        f"{result.found}/{result.total}",
        f"{result.found / result.total:.1%}",
        *agreement,
        f"{1000 * np.mean(result.seconds):.1f}",
    ]


def _print_table(rows: list[list[str]]) -> None:
    header = ["detector path", "face", "found", "rate", "lm median", "lm p95", "ms/img"]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, ["-" * width for width in widths], *rows]:
        cells = [cell.rjust(width) for cell, width in zip(row, widths, strict=True)]
        cells[0] = row[0].ljust(widths[0])  # labels read best left-aligned
        print("  ".join(cells))


if __name__ == "__main__":
    main()
