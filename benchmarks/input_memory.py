"""Peak memory of `fiqa score` for one large image, per pixel (issue 14): what the pixel
budget (`--max-pixels`) bounds.

Each image is scored alone by a fresh `python -m fiqa_cli score IMAGE --quiet` process (MTCNN,
one worker); its peak resident set size is its own ru_maxrss (os.wait4). The baseline is a
112x112 image: the process, its libraries and models. Bytes per pixel are (peak - baseline)
divided by the image's pixels; times the budget they bound one input's memory beyond the
baseline, for that kind of image. A 16-bit RGBA PNG is the costliest kind OpenCV decodes here
(8 bytes a pixel before conversion); an 8-bit JPEG is the ordinary photo.

    python benchmarks/input_memory.py [--megapixels 12]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
from common import print_table

from fiqa_cli.choices import DEFAULT_MAX_PIXELS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megapixels", type=float, default=12.0, help="size of the large images")
    args = parser.parse_args()
    side = int((args.megapixels * 1e6 / 12) ** 0.5)
    width, height = 4 * side, 3 * side
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="fiqa-input-memory-") as folder:
        images = {
            "baseline 112x112 JPEG": _write(Path(folder) / "tiny.jpg", rng, 112, 112, np.uint8, 3),
            f"8-bit RGB JPEG {width}x{height}": _write(
                Path(folder) / "large.jpg", rng, width, height, np.uint8, 3
            ),
            f"16-bit RGBA PNG {width}x{height}": _write(
                Path(folder) / "large.png", rng, width, height, np.uint16, 4
            ),
        }
        peaks = {label: _peak_rss(path) for label, path in images.items()}
    baseline = peaks["baseline 112x112 JPEG"]
    rows = []
    for label, peak in peaks.items():
        pixels = 112 * 112 if label.startswith("baseline") else width * height
        per_pixel = (peak - baseline) / pixels
        budget = per_pixel * DEFAULT_MAX_PIXELS / 2**20
        rows.append(
            [label, f"{peak / 2**20:.0f}", f"{per_pixel:.1f}", f"{budget:.0f}"]
            if pixels > 112 * 112
            else [label, f"{peak / 2**20:.0f}", "", ""]
        )
    print_table(
        ["image", "peak RSS MiB", "bytes/pixel", f"MiB at {DEFAULT_MAX_PIXELS / 1e6:.0f} MP"], rows
    )


def _write(
    path: Path, rng: np.random.Generator, width: int, height: int, dtype: type, channels: int
) -> Path:
    # Smooth content: compressed files stay small, as photos do.
    small = rng.integers(0, np.iinfo(dtype).max, (height // 64 + 1, width // 64 + 1, channels))
    image = cv2.resize(small.astype(dtype), (width, height), interpolation=cv2.INTER_LINEAR)
    cv2.imwrite(str(path), image)
    return path


def _peak_rss(image: Path) -> int:
    command = [sys.executable, "-m", "fiqa_cli", "score", str(image), "--quiet"]
    command += ["--detector", "mtcnn", "--workers", "1", "--device", "cpu"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        raise SystemExit(f"{' '.join(command)} failed ({status})")
    return usage.ru_maxrss * 1024  # kilobytes on Linux


if __name__ == "__main__":
    main()
