"""Stage costs of the scoring pipeline on this machine, and `fiqa score` set against them
(issue 6).

Each stage runs alone over the same LFW devtrain photos, warmed up on one input first so that
session set-up is not counted as throughput:

- decode;
- detect (MTCNN, YuNet + O-Net and the two shared SCRFD models; `--detectors`), both as one
  call at a time with every core and as `fiqa score` runs it: one single-threaded session call
  per worker thread, a worker per CPU;
- align;
- inference of the default quality model and of seeded iresnet50/iresnet100 exports (their
  arithmetic, not trained weights; needs torch) at several batch sizes: the raw ceiling of
  each model in onnxruntime;
- write (CSV rows to /dev/null).

`fiqa score` then runs end to end in-process on the same photos, once with `--detector mtcnn`
and once with `--detector yunet` (default workers and batch size, model loading included). Each
throughput is given as a ratio to the slowest stage it contains, each stage measured in the
pipeline's own configuration, and to the serial bound: the rate if the cores did each contained
stage's work one after another (on a machine where all stages share the same cores, overlapping
them cannot beat that bound). Cold start is the wall time of `fiqa score one.jpg --out -` as a
fresh process, with the default detector and with each end-to-end one.

    python benchmarks/stages.py [--shared PATH] [--images N] [--archs iresnet50,iresnet100]
        [--detectors mtcnn,yunet,scrfd 500m,scrfd 2.5g]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from common import add_shared_argument, lfw_photos, print_table, seeded_backbone, spread_sample

from fiqa_cli.choices import CPU_BATCH_SIZE
from fiqa_cli.commands.score import score
from fiqa_cli.paths import default_model_path
from fiqa_cli.runtime.align import align_face
from fiqa_cli.runtime.decode import read_image
from fiqa_cli.runtime.detect import Detector, create_detector
from fiqa_cli.runtime.providers import CPU, shared_cpu_options, usable_cpus
from fiqa_cli.runtime.quality_model import QualityModel
from fiqa_cli.runtime.rows import OK, Row, RowWriter

SCRFD_MODELS = {"scrfd 500m": "scrfd_500m_bnkps.onnx", "scrfd 2.5g": "scrfd_2.5g_bnkps.onnx"}
DETECTION_STAGES = ("mtcnn", "yunet", *SCRFD_MODELS)
BATCH_SIZES = (1, 8, 16, 32, 64)
END_TO_END_DETECTORS = ("mtcnn", "yunet")
COLD_START_RUNS = 3
# Crops timed per batch size for the large backbones (their batches are slow on a CPU).
BACKBONE_CROPS = 64


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
    paths = spread_sample(lfw_photos(args.shared), args.images)
    workers = usable_cpus()
    batch_size = CPU_BATCH_SIZE

    images = [read_image(path) for path in paths]
    results = [_timed("decode", paths, read_image, "images")]
    for label in args.detectors:
        name, model_path = label, None
        if label in SCRFD_MODELS:
            name, model_path = "scrfd", args.shared / "models" / SCRFD_MODELS[label]
        alone = create_detector(name, model_path)
        results.append(_timed(f"detect {label}", images, alone.detect, "images"))
        pooled = create_detector(name, model_path, options=shared_cpu_options(threads=1))
        results.append(_pooled(f"detect {label} x{workers} workers", images, pooled, workers))

    faces = _largest_faces(create_detector("mtcnn"), images)
    results.append(_timed("align", faces, lambda face: align_face(face[0], face[1]), "crops"))
    crops = [align_face(image, landmarks) for image, landmarks in faces]
    default_model = QualityModel(default_model_path(), [CPU])
    results += [_infer("default", default_model, crops, batch) for batch in BATCH_SIZES]
    pipeline_model = QualityModel(default_model_path(), [CPU], shared_cpu_options())
    pipeline_infer = f"infer default b{batch_size} (fiqa score options)"
    results.append(_infer("default", pipeline_model, crops, batch_size, pipeline_infer))
    with tempfile.TemporaryDirectory() as folder:
        for arch in args.archs:
            model = QualityModel(_seeded_export(arch, Path(folder)), [CPU])
            results += [
                _infer(arch, model, crops[:BACKBONE_CROPS], batch, minimum=BACKBONE_CROPS)
                for batch in BATCH_SIZES
            ]
    results.append(_write(paths))

    end_to_end = {detector: _end_to_end(paths, detector) for detector in END_TO_END_DETECTORS}
    cold_starts = {
        detector: [_cold_start(paths[0], detector) for _ in range(COLD_START_RUNS)]
        for detector in (None, *END_TO_END_DETECTORS)
    }

    _print_results(results + list(end_to_end.values()))
    for detector, run in end_to_end.items():
        pipeline_detector = f"detect {detector} x{workers} workers"
        contained = [r for r in results if r.stage in ("decode", pipeline_detector, "align")]
        contained += [r for r in results if r.stage in (pipeline_infer, "write")]
        if len(contained) < 5:
            print(f"\n{run.stage}: no ratios (the {detector} stage was not timed: --detectors)")
            continue
        slowest = min(contained, key=lambda r: r.per_second)
        # Crops per image converts the crop stages' costs to a cost per image.
        crops_per_image = len(crops) / len(paths)
        serial_seconds = sum(
            (crops_per_image if r.unit == "crops" else 1.0) / r.per_second for r in contained
        )
        print(
            f"\n{run.stage}, end to end: {run.per_second:.1f} images/s with {workers} workers, "
            f"batch {batch_size}\n"
            f"  / slowest contained stage ({slowest.stage}, {slowest.per_second:.1f} "
            f"{slowest.unit}/s): {run.per_second / slowest.per_second:.2f}\n"
            f"  / serial bound of the contained stages ({1 / serial_seconds:.1f} images/s): "
            f"{run.per_second * serial_seconds:.2f}"
        )
    first, second = (end_to_end[detector].per_second for detector in END_TO_END_DETECTORS[:2])
    print(
        f"\n{END_TO_END_DETECTORS[1]} / {END_TO_END_DETECTORS[0]} end to end: {second / first:.2f}x"
    )
    for detector, seconds in cold_starts.items():
        flag = f" --detector {detector}" if detector else " (default detector)"
        print(
            f"cold start `fiqa score one.jpg --out -`{flag}: median "
            f"{statistics.median(seconds):.2f} s of {COLD_START_RUNS} "
            f"({', '.join(f'{s:.2f}' for s in seconds)})"
        )
    print(f"{len(paths)} LFW photos, {len(crops)} faces, {workers} usable CPUs")


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_shared_argument(parser)
    parser.add_argument("--images", type=int, default=1000, help="LFW photos to time")
    parser.add_argument(
        "--archs",
        type=lambda value: [arch for arch in value.split(",") if arch],
        default=["iresnet50", "iresnet100"],
        help="backbones to export (seeded) and time; '' for none",
    )
    parser.add_argument(
        "--detectors",
        type=lambda value: [label for label in value.split(",") if label],
        default=list(DETECTION_STAGES),
        help=f"detection stages to time, of {','.join(DETECTION_STAGES)}",
    )
    args = parser.parse_args()
    unknown = set(args.detectors) - set(DETECTION_STAGES)
    if unknown:
        parser.error(f"unknown --detectors {', '.join(sorted(unknown))}")
    return args


def _timed(stage: str, inputs: Sequence, run: Callable, unit: str) -> StageResult:
    run(inputs[0])
    start = time.perf_counter()
    for value in inputs:
        run(value)
    return StageResult(stage, len(inputs), time.perf_counter() - start, unit)


def _pooled(stage: str, images: list[np.ndarray], detector: Detector, workers: int):
    """Detection as the scorer's worker pool runs it: one call per thread at a time."""
    detector.detect(images[0])
    with ThreadPoolExecutor(workers) as pool:
        start = time.perf_counter()
        list(pool.map(detector.detect, images))
        return StageResult(stage, len(images), time.perf_counter() - start, "images")


def _largest_faces(
    detector: Detector, images: list[np.ndarray]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(image, landmarks of its largest face) for each image with a face."""
    found = [(image, detector.detect(image)) for image in images]
    return [(image, faces[0].landmarks) for image, faces in found if faces]


def _infer(
    label: str,
    model: QualityModel,
    crops: list[np.ndarray],
    batch: int,
    stage: str | None = None,
    minimum: int = 0,
) -> StageResult:
    """Preprocessing and inference over the crops in full batches (cycling the crops), so
    every batch size does about the same work."""
    batches = max(1, round(max(len(crops), minimum) / batch))
    cycled = [crops[i % len(crops)] for i in range(batches * batch)]
    chunks = [cycled[i : i + batch] for i in range(0, len(cycled), batch)]
    timed = _timed(stage or f"infer {label} b{batch}", chunks, model.predict, "crops")
    return StageResult(timed.stage, len(cycled), timed.seconds, "crops")


def _seeded_export(arch: str, folder: Path) -> Path:
    from fiqa_cli.export.onnx_export import export_model

    return export_model(seeded_backbone(arch), folder / f"{arch}.onnx", architecture=arch)


def _write(paths: list[Path]) -> StageResult:
    rows = [[Row(str(path), OK, 0, 0.4, 0.99, (10.0, 20.0, 110.0, 140.0))] for path in paths]
    with open(os.devnull, "w", encoding="utf-8") as sink:
        return _timed(
            "write", rows, RowWriter(sink, "csv", write_header=True).write_input, "images"
        )


def _end_to_end(paths: list[Path], detector: str) -> StageResult:
    """`fiqa score` in-process, model and detector loading included, output discarded."""
    arguments = ["--out", os.devnull, "--quiet", "--detector", detector]
    score.main([str(paths[0]), *arguments], standalone_mode=False)
    start = time.perf_counter()
    score.main([*map(str, paths), *arguments], standalone_mode=False)
    return StageResult(
        f"fiqa score ({detector})", len(paths), time.perf_counter() - start, "images"
    )


def _cold_start(image: Path, detector: str | None) -> float:
    command = [sys.executable, "-m", "fiqa_cli", "score", str(image), "--out", "-", "--quiet"]
    if detector is not None:
        command += ["--detector", detector]
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def _print_results(results: list[StageResult]) -> None:
    header = ["stage", "items", "seconds", "per second", "ms/item"]
    rows = [
        [
            result.stage,
            f"{result.items} {result.unit}",
            f"{result.seconds:.2f}",
            f"{result.per_second:.1f} {result.unit}/s",
            f"{1000 * result.seconds / result.items:.2f}",
        ]
        for result in results
    ]
    print_table(header, rows)


if __name__ == "__main__":
    main()
