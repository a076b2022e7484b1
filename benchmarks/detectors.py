"""Detector paths against SCRFD-2.5G's landmarks (issue 21): which one `auto` should take.

Every path sees the same decoded LFW devtrain photos (decoding not timed), one session thread
each (the reference: every core), in one loop. For each photo the central face of each path
(box centre nearest the image centre: the labelled person) is compared with SCRFD-2.5G's
central face; it is matched when the box centres are less than half SCRFD's box width apart.
Landmark error is the NME: the mean of the 5 point distances over SCRFD's inter-ocular
distance, on the photos where every path matched. The last rows give the paired bootstrap 95%
interval of each path's median and 90th percentile minus MTCNN's (negative: closer to SCRFD
than MTCNN is).

SCRFD-2.5G is research-only: it is the yardstick here and nothing is fitted to it.

    python benchmarks/detectors.py [--shared PATH] [--images 1000] [--data lfw|celeba]

`--data celeba` takes the photos from `data/celeba-wild/` instead: in-the-wild CelebA photos
with far more pose, light and occlusion than LFW's, where the detectors' rates can differ.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from common import add_shared_argument, lfw_photos, print_table, spread_sample

from fiqa_cli.choices import CENTRAL_FACE
from fiqa_cli.runtime.decode import read_image
from fiqa_cli.runtime.detect import Face, create_detector
from fiqa_cli.runtime.face_choice import chosen_face_index
from fiqa_cli.runtime.providers import CPU, shared_cpu_options

REFERENCE_MODEL = "scrfd_2.5g_bnkps.onnx"
PATHS = ("mtcnn", "yunet")
BOOTSTRAP_RESAMPLES = 2000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_shared_argument(parser)
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--data", choices=("lfw", "celeba"), default="lfw")
    args = parser.parse_args()
    if args.data == "lfw":
        photos = lfw_photos(args.shared)
    else:
        photos = sorted((args.shared / "data" / "celeba-wild").glob("*/*.jpg"))
        if not photos:
            raise SystemExit(f"no CelebA photos under {args.shared}/data/celeba-wild")
    paths = spread_sample(photos, args.images)
    images = [read_image(path) for path in paths]
    options = shared_cpu_options(threads=1)
    # the reference's speed is not compared: it gets every core, to keep the run short
    reference_model = args.shared / "models" / REFERENCE_MODEL
    reference = create_detector("scrfd", reference_model, [CPU], shared_cpu_options())
    detectors = {name: create_detector(name, None, [CPU], options) for name in PATHS}

    seconds = {name: 0.0 for name in ("scrfd 2.5g", *PATHS)}
    found = {name: 0 for name in PATHS}  # central face matched to SCRFD's
    any_face = {name: 0 for name in PATHS}
    errors: dict[str, list[float]] = {name: [] for name in PATHS}
    truths: list[Face | None] = []
    for image in images:
        start = time.perf_counter()
        truth = _central(reference.detect(image), image.shape)
        seconds["scrfd 2.5g"] += time.perf_counter() - start
        truths.append(truth)
        photo_errors = {}
        for name, detector in detectors.items():
            start = time.perf_counter()
            face = _central(detector.detect(image), image.shape)
            seconds[name] += time.perf_counter() - start
            any_face[name] += face is not None
            if face is not None and truth is not None and _matched(face, truth):
                found[name] += 1
                photo_errors[name] = _nme(face, truth)
        if len(photo_errors) == len(PATHS):
            for name, error in photo_errors.items():
                errors[name].append(error)

    common = len(errors[PATHS[0]])
    print(
        f"{len(images)} {args.data} photos; NME against SCRFD-2.5G on the {common} photos where "
        "every path matched its central face; one thread per session"
    )
    rows = []
    for name in PATHS:
        nme = np.asarray(errors[name])
        rows.append(
            [
                name,
                f"{any_face[name]}/{len(images)}",
                f"{found[name]}/{len(images)}",
                f"{np.median(nme):.4f}",
                f"{np.percentile(nme, 90):.4f}",
                f"{nme.mean():.4f}",
                f"{(nme > 0.1).mean():.1%}",
                f"{len(images) / seconds[name]:.1f}",
            ]
        )
    reference_rate = f"{len(images) / seconds['scrfd 2.5g']:.1f} (all cores)"
    found_reference = sum(truth is not None for truth in truths)
    rows.append(
        ["scrfd 2.5g (reference)", f"{found_reference}/{len(images)}", *["-"] * 5, reference_rate]
    )
    header = ["path", "any face", "matched", "NME median", "NME p90", "mean", "> 0.1", "photos/s"]
    print_table(header, rows)
    print()
    baseline = np.asarray(errors["mtcnn"])
    interval_rows = []
    for name in PATHS[1:]:
        median, p90 = _paired_intervals(np.asarray(errors[name]), baseline)
        interval_rows.append([f"{name} - mtcnn", median, p90])
    print_table(["difference", "median, 95% CI", "p90, 95% CI"], interval_rows)


def _central(faces: list[Face], shape: tuple[int, ...]) -> Face | None:
    return faces[chosen_face_index(faces, shape[:2], CENTRAL_FACE)] if faces else None


def _centre(face: Face) -> np.ndarray:
    return (face.bbox[:2] + face.bbox[2:]) / 2


def _matched(face: Face, truth: Face) -> bool:
    return bool(
        np.linalg.norm(_centre(face) - _centre(truth)) < 0.5 * (truth.bbox[2] - truth.bbox[0])
    )


def _nme(face: Face, truth: Face) -> float:
    iod = np.linalg.norm(truth.landmarks[0] - truth.landmarks[1])
    return float(np.linalg.norm(face.landmarks - truth.landmarks, axis=1).mean() / iod)


def _paired_intervals(errors: np.ndarray, baseline: np.ndarray) -> tuple[str, str]:
    """95% intervals of (median, p90) of `errors` minus those of `baseline`, photos resampled
    in pairs."""
    rng = np.random.default_rng(0)
    picks = rng.integers(0, len(errors), (BOOTSTRAP_RESAMPLES, len(errors)))
    ours, theirs = errors[picks], baseline[picks]
    medians = np.median(ours, axis=1) - np.median(theirs, axis=1)
    p90s = np.percentile(ours, 90, axis=1) - np.percentile(theirs, 90, axis=1)

    def interval(values: np.ndarray) -> str:
        low, high = np.percentile(values, [2.5, 97.5])
        return f"{low:+.4f} .. {high:+.4f}"

    return interval(medians), interval(p90s)


if __name__ == "__main__":
    main()
