"""What `fiqa score --measures` (and `--profile`) add to `fiqa score`'s end-to-end time
(issue 16: at most 10%).

`fiqa score` runs in-process on the same LFW photos with and without the option, rounds
interleaved so that a machine's changing load falls on both alike; the best round of each
counts, and each round starts with another option. Also the cost of the measures alone, per face.

    python benchmarks/measures.py [--shared PATH] [--images N] [--rounds R] [--detector D]
"""

from __future__ import annotations

import argparse
import os
import time

from common import add_shared_argument, lfw_photos, print_table, spread_sample

from fiqa_cli.choices import LARGEST_FACE
from fiqa_cli.commands.score import score
from fiqa_cli.runtime.decode import read_image
from fiqa_cli.runtime.detect import create_detector
from fiqa_cli.runtime.faces import aligned_detected
from fiqa_cli.runtime.measures import measure_face

OPTIONS = {"default": [], "--measures": ["--measures"], "--profile icao": ["--profile", "icao"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_shared_argument(parser)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--detector", default="mtcnn", choices=("mtcnn", "scrfd"))
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    paths = [str(path) for path in spread_sample(lfw_photos(args.shared), args.images)]
    detector_arguments = ["--detector", args.detector]
    if args.detector == "scrfd":
        model = args.shared / "models" / "scrfd_500m_bnkps.onnx"
        detector_arguments += ["--detector-model", str(model)]
    common = ["--out", os.devnull, "--quiet", "--workers", str(args.workers), "--device", "cpu"]
    common += detector_arguments
    options = {label: extra for label, extra in OPTIONS.items() if _available(extra)}
    best = dict.fromkeys(options, float("inf"))
    for extra in options.values():  # warm-up: model loading, first-call costs
        _run_score([paths[0], *common, *extra])
    labels = list(options)
    for round_number in range(args.rounds):
        # Each round starts with another option, so none always runs first.
        shift = round_number % len(labels)
        for label in labels[shift:] + labels[:shift]:
            extra = options[label]
            start = time.perf_counter()
            _run_score([*paths, *common, *extra])
            best[label] = min(best[label], time.perf_counter() - start)
    per_face = _measures_alone(paths, args)
    rows = [
        [
            label,
            f"{seconds:.2f}",
            f"{1000 * seconds / len(paths):.2f}",
            f"{100 * (seconds / best['default'] - 1):+.1f}%",
        ]
        for label, seconds in best.items()
    ]
    print_table(["fiqa score", "seconds (best)", "ms/image", "vs default"], rows)
    print(
        f"\nmeasures alone: {per_face:.2f} ms per face\n{len(paths)} LFW photos, detector "
        f"{args.detector}, {args.workers} worker(s), best of {args.rounds} interleaved rounds"
    )


def _run_score(arguments: list[str]) -> None:
    try:
        score.main(arguments, standalone_mode=False)
    except SystemExit as done:  # --profile exits 3 when a face fails, as it will on LFW
        if done.code not in (0, 3):
            raise


def _available(extra: list[str]) -> bool:
    """--profile exists only once profiles are built (issue 16, part 3)."""
    return not extra or f"--{extra[0].lstrip('-')}" in {p.opts[0] for p in score.params}


def _measures_alone(paths: list[str], args: argparse.Namespace) -> float:
    model = args.shared / "models" / "scrfd_500m_bnkps.onnx" if args.detector == "scrfd" else None
    detector = create_detector(args.detector, model)
    prepared = []
    for path in paths:
        image = read_image(path)
        faces = detector.detect(image)
        prepared += [(image, each, faces) for each in aligned_detected(image, faces, LARGEST_FACE)]
    start = time.perf_counter()
    for image, found, faces in prepared:
        measure_face(image, found.face, faces, found.crop)
    return 1000 * (time.perf_counter() - start) / max(1, len(prepared))


if __name__ == "__main__":
    main()
