"""Peak memory of `fiqa score` as the number of inputs grows (issue 6).

Each size runs as a fresh `python -m fiqa_cli score DIR --out FILE --quiet` process on a
temporary folder of symlinks to LFW devtrain photos, cycled under distinct names to reach the
larger sizes. The peak resident set size is that process's own ru_maxrss, taken with os.wait4
(RUSAGE_CHILDREN would report the largest of all children so far). Streaming scoring keeps it
flat: the target is a peak at the largest size within 1.2x of that at the smallest.

With --crops the inputs are 112x112 aligned crops, made once from LFW photos with the chosen
detector, and scored with `--detector none`: no detection, so 10,000 inputs take minutes.

    python benchmarks/memory.py [--shared PATH] [--sizes 100,10000] [--crops]
        [--detector auto|scrfd|mtcnn] [--detector-model PATH]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
from common import (
    add_shared_argument,
    largest_face_crops,
    lfw_photos,
    print_table,
    spread_sample,
)

from fiqa_cli.choices import DETECTORS, NO_DETECTOR
from fiqa_cli.runtime.detect import create_detector
from fiqa_cli.runtime.rows import OK, read_rows

DEFAULT_SIZES = (100, 10_000)
TARGET_RATIO = 1.2
# Distinct crops behind the symlinks in --crops mode: enough variety, made in seconds.
CROP_POOL = 200
# ru_maxrss is in kilobytes on Linux and in bytes on macOS.
_MAXRSS_BYTES = 1 if sys.platform == "darwin" else 1024


@dataclass(frozen=True)
class Run:
    inputs: int
    scored: int  # rows with status ok
    seconds: float
    peak_rss_bytes: int

    @property
    def peak_rss_mib(self) -> float:
        return self.peak_rss_bytes / 2**20


def main() -> None:
    args = _parse_args()
    with tempfile.TemporaryDirectory(prefix="fiqa-memory-") as temp:
        temp_dir = Path(temp)
        if args.crops:
            sources = _crop_pool(lfw_photos(args.shared), args, temp_dir / "crops")
            score_arguments = ["--detector", NO_DETECTOR]
        else:
            sources = lfw_photos(args.shared)
            score_arguments = ["--detector", args.detector]
            if args.detector_model is not None:
                score_arguments += ["--detector-model", str(args.detector_model)]
        runs = []
        for size in args.sizes:
            folder = _linked_inputs(sources, size, temp_dir / f"inputs_{size}")
            runs.append(_score_run(folder, size, temp_dir / f"scores_{size}.csv", score_arguments))

    what = "aligned crops, --detector none" if args.crops else f"photos, --detector {args.detector}"
    print(f"fiqa score on LFW devtrain {what} ({len(sources)} distinct files, cycled)\n")
    smallest = runs[0].peak_rss_bytes
    rows = [
        [
            str(run.inputs),
            str(run.scored),
            f"{run.seconds:.1f}",
            f"{run.inputs / run.seconds:.1f}",
            f"{run.peak_rss_mib:.1f}",
            f"{run.peak_rss_bytes / smallest:.2f}x",
        ]
        for run in runs
    ]
    print_table(["inputs", "scored", "seconds", "inputs/s", "peak RSS MiB", "vs smallest"], rows)
    ratio = runs[-1].peak_rss_bytes / smallest
    verdict = "met" if ratio <= TARGET_RATIO else "NOT met"
    print(
        f"\ntarget: peak RSS at {runs[-1].inputs} inputs <= {TARGET_RATIO}x that at "
        f"{runs[0].inputs}: {ratio:.2f}x ({verdict})"
    )


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_shared_argument(parser)
    parser.add_argument(
        "--sizes",
        type=lambda text: sorted(int(size) for size in text.split(",")),
        default=list(DEFAULT_SIZES),
        help="comma-separated input counts (default: %(default)s)",
    )
    parser.add_argument(
        "--crops", action="store_true", help="score aligned crops with --detector none"
    )
    parser.add_argument(
        "--detector",
        choices=DETECTORS,
        default="auto",
        help="passed to fiqa score (with --crops: makes the crops)",
    )
    parser.add_argument("--detector-model", type=Path, help="SCRFD file, passed through")
    return parser.parse_args()


def _crop_pool(photos: list[Path], args: argparse.Namespace, folder: Path) -> list[Path]:
    """Aligned crops of the largest face of CROP_POOL photos spread over LFW, as PNG files."""
    detector = create_detector(args.detector, args.detector_model)
    folder.mkdir()
    crop_paths = []
    for photo, crop in largest_face_crops(spread_sample(photos, CROP_POOL), detector):
        crop_paths.append(folder / f"{photo.stem}.png")
        cv2.imwrite(str(crop_paths[-1]), crop)
    return crop_paths


def _linked_inputs(sources: list[Path], size: int, folder: Path) -> Path:
    """A folder of `size` symlinks with distinct names, spread over `sources` and cycling
    through them when `size` exceeds their number."""
    chosen = spread_sample(sources, size)
    folder.mkdir()
    for index in range(size):
        source = chosen[index % len(chosen)]
        (folder / f"{index:06d}_{source.name}").symlink_to(source.resolve())
    return folder


def _score_run(folder: Path, size: int, out: Path, score_arguments: list[str]) -> Run:
    command = [sys.executable, "-m", "fiqa_cli", "score", str(folder), "--out", str(out)]
    command += ["--quiet", *score_arguments]
    with tempfile.TemporaryFile() as stderr:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            stderr.seek(0)
            message = stderr.read().decode(errors="replace")
            raise SystemExit(f"fiqa score exited {process.returncode}:\n{message}")
    rows = read_rows(out)
    if len(rows) != size:
        raise SystemExit(f"fiqa score wrote {len(rows)} rows for {size} inputs ({out})")
    scored = sum(row["status"] == OK for row in rows)
    return Run(size, scored, seconds, usage.ru_maxrss * _MAXRSS_BYTES)


if __name__ == "__main__":
    main()
