"""Stage costs of the scoring pipeline on this machine (issue 6).

Each stage runs alone over the same LFW devtrain photos: decode, detect (MTCNN and the two
shared SCRFD models), align, and inference of the default quality model at several batch
sizes. `fiqa score` then runs end to end in-process on the same photos with the detector it
falls back to here (MTCNN), and its throughput is set against the slowest stage it contains.
Cold start is the wall time of `fiqa score one.jpg --out -` as a fresh process. Every stage is
warmed up once on one input before it is timed, so session setup is not counted as throughput.

    python benchmarks/stages.py [--shared PATH] [--images N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fiqa_cli.align import align_face
from fiqa_cli.decode import read_image
from fiqa_cli.detect import Detector, create_detector
from fiqa_cli.paths import default_model_path
from fiqa_cli.providers import CPU
from fiqa_cli.quality_model import QualityModel
from fiqa_cli.score_cli import score

REPO_ROOT = Path(__file__).resolve().parent.parent
SCRFD_MODELS = {"scrfd 500m": "scrfd_500m_bnkps.onnx", "scrfd 2.5g": "scrfd_2.5g_bnkps.onnx"}
BATCH_SIZES = (1, 8, 32, 64)
END_TO_END_DETECTOR = "mtcnn"
COLD_START_RUNS = 3


@dataclass(frozen=True)
class StageResult:
    stage: str
    items: int
    seconds: float
    unit: str  # "images" or "crops"

    @property
    def per_second(self) -> float:
        return self.items / self.seconds


def main() -> None:
    args = _parse_args()
    lfw_images = args.shared / "data" / "lfw-devtrain" / "images"
    if not lfw_images.is_dir():
        raise SystemExit(f"LFW devtrain images not found under {args.shared} (use --shared)")
    paths = _spread_sample(sorted(lfw_images.glob("*/*.jpg")), args.images)

    images = [read_image(path) for path in paths]
    results = [_timed("decode", paths, read_image, "images")]
    detectors = [("mtcnn", create_detector("mtcnn"))] + [
        (label, create_detector("scrfd", args.shared / "models" / name))
        for label, name in SCRFD_MODELS.items()
    ]
    for label, detector in detectors:
        results.append(_timed(f"detect {label}", images, detector.detect, "images"))

    faces = _largest_faces(detectors[0][1], images)
    results.append(_timed("align", faces, lambda face: align_face(face[0], face[1]), "crops"))
    crops = [align_face(image, landmarks) for image, landmarks in faces]
    model = QualityModel(default_model_path(), [CPU])
    results += [_infer(model, crops, batch) for batch in BATCH_SIZES]

    end_to_end = _end_to_end(paths)
    contained = ["decode", f"detect {END_TO_END_DETECTOR}", "align", f"infer b{BATCH_SIZES[-1]}"]
    slowest = min((r for r in results if r.stage in contained), key=lambda r: r.per_second)
    cold_starts = [_cold_start(paths[0]) for _ in range(COLD_START_RUNS)]

    _print_table(results, end_to_end, slowest)
    print(
        f"\ncold start `fiqa score one.jpg --out -`: median {statistics.median(cold_starts):.2f} s "
        f"of {COLD_START_RUNS} ({', '.join(f'{s:.2f}' for s in cold_starts)})"
    )
    print(f"{len(paths)} LFW photos, {len(crops)} faces, {os.cpu_count()} CPUs")


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_shared = os.environ.get("FIQA_SHARED", REPO_ROOT.parent / "shared")
    parser.add_argument("--shared", type=Path, default=Path(default_shared))
    parser.add_argument("--images", type=int, default=200, help="LFW photos to time")
    return parser.parse_args()


def _spread_sample(paths: list[Path], count: int) -> list[Path]:
    """`count` photos evenly spaced over the sorted list, so that many people appear."""
    step = max(1, len(paths) // count)
    return paths[::step][:count]


def _timed(stage: str, inputs: Sequence, run: Callable, unit: str) -> StageResult:
    run(inputs[0])
    start = time.perf_counter()
    for value in inputs:
        run(value)
    return StageResult(stage, len(inputs), time.perf_counter() - start, unit)


def _largest_faces(
    detector: Detector, images: list[np.ndarray]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(image, landmarks of its largest face) for each image with a face."""
    found = [(image, detector.detect(image)) for image in images]
    return [(image, faces[0].landmarks) for image, faces in found if faces]


def _infer(model: QualityModel, crops: list[np.ndarray], batch: int) -> StageResult:
    """Preprocessing and inference over the crops in full batches (cycling the crops), so
    every batch size does about the same work."""
    batches = max(1, round(len(crops) / batch))
    cycled = [crops[i % len(crops)] for i in range(batches * batch)]
    chunks = [cycled[i : i + batch] for i in range(0, len(cycled), batch)]
    timed = _timed(f"infer b{batch}", chunks, model.predict, "crops")
    return StageResult(timed.stage, len(cycled), timed.seconds, "crops")


def _end_to_end(paths: list[Path]) -> StageResult:
    """`fiqa score` in-process, model and detector loading included, output discarded."""
    arguments = ["--out", os.devnull, "--quiet", "--detector", END_TO_END_DETECTOR]
    score.main([str(paths[0]), *arguments], standalone_mode=False)
    start = time.perf_counter()
    score.main([*map(str, paths), *arguments], standalone_mode=False)
    return StageResult(
        f"fiqa score ({END_TO_END_DETECTOR})", len(paths), time.perf_counter() - start, "images"
    )


def _cold_start(image: Path) -> float:
    command = [sys.executable, "-m", "fiqa_cli", "score", str(image), "--out", "-", "--quiet"]
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def _print_table(results: list[StageResult], end_to_end: StageResult, slowest: StageResult) -> None:
    header = ["stage", "items", "seconds", "per second", "ms/item"]
    rows = [
        [
            result.stage,
            f"{result.items} {result.unit}",
            f"{result.seconds:.2f}",
            f"{result.per_second:.1f} {result.unit}/s",
            f"{1000 * result.seconds / result.items:.2f}",
        ]
        for result in [*results, end_to_end]
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, ["-" * width for width in widths], *rows]:
        cells = [cell.rjust(width) for cell, width in zip(row, widths, strict=True)]
        cells[0] = row[0].ljust(widths[0])  # labels read best left-aligned
        print("  ".join(cells))
    ratio = end_to_end.per_second / slowest.per_second
    print(
        f"\nend to end / slowest contained stage ({slowest.stage}, "
        f"{slowest.per_second:.1f} {slowest.unit}/s): {ratio:.2f}"
    )


if __name__ == "__main__":
    main()
