"""Peak memory and speed of `fiqa best` on generated videos of growing length (issue 17).

Each video is an MJPG AVI at low resolution: an LFW devtrain photo moving over a grey
background, every third frame blurred, so that frames differ and the gate and ranking have
work to do. Each length runs as a fresh `python -m fiqa_cli best VIDEO --fps F --out FILE
--quiet` process (MTCNN, the embedded model, on CPU); its peak resident set size is its own
ru_maxrss, taken with os.wait4. Every frame is grabbed (decoded), only the sampled ones are
retrieved and scored. Streaming keeps memory flat: the target is a peak at the longest video
within 1.1x of that at the shortest. The inference batch is small (--batch-size, default 8) so
that the shortest video fills it too: onnxruntime's memory grows with the batch, not the video.

    python benchmarks/best.py [--shared PATH] [--minutes 1,10] [--video-fps 10]
        [--sample-fps 0.2] [--batch-size 8] [--size 320x240]
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from common import REPO_ROOT, add_shared_argument, lfw_photos, print_table

TARGET_RATIO = 1.1
# ru_maxrss is in kilobytes on Linux and in bytes on macOS.
_MAXRSS_BYTES = 1 if sys.platform == "darwin" else 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_shared_argument(parser)
    parser.add_argument("--minutes", default="1,10", help="Video lengths, comma-separated.")
    parser.add_argument("--video-fps", type=float, default=10.0)
    parser.add_argument("--sample-fps", type=float, default=0.2, help="fiqa best --fps.")
    parser.add_argument("--batch-size", type=int, default=8, help="fiqa best --batch-size.")
    parser.add_argument("--size", default="320x240", help="WIDTHxHEIGHT of the video.")
    args = parser.parse_args()
    width, height = (int(part) for part in args.size.split("x"))
    photo = cv2.imread(str(lfw_photos(args.shared)[0]))
    rows = []
    peaks = []
    with tempfile.TemporaryDirectory() as folder:
        for minutes in (float(text) for text in args.minutes.split(",")):
            video = Path(folder) / f"video_{minutes:g}min.avi"
            frames = write_video(video, photo, minutes, args.video_fps, (width, height))
            seconds, peak, kept = run_best(
                video, args.sample_fps, args.batch_size, Path(folder) / "best.csv"
            )
            sampled = minutes * 60 * args.sample_fps
            peaks.append(peak)
            rows.append(
                [
                    f"{minutes:g} min",
                    str(frames),
                    f"{sampled:.0f}",
                    f"{seconds:.1f}",
                    f"{frames / seconds:.0f}",
                    f"{sampled / seconds:.1f}",
                    f"{peak / 2**20:.0f}",
                    kept,
                ]
            )
            video.unlink()
    print(
        f"fiqa best --fps {args.sample_fps:g} --batch-size {args.batch_size} on "
        f"{width}x{height} MJPG video at {args.video_fps:g} fps "
        "(MTCNN, embedded model, CPU, one process per row)"
    )
    header = ["video", "frames", "scored", "seconds", "frames/s", "scored/s", "peak MiB", "kept"]
    print_table(header, rows)
    ratio = peaks[-1] / peaks[0]
    verdict = "met" if ratio <= TARGET_RATIO else "NOT met"
    print(f"peak RSS longest/shortest: {ratio:.3f} (target <= {TARGET_RATIO}: {verdict})")


def write_video(
    path: Path, photo: np.ndarray, minutes: float, fps: float, size: tuple[int, int]
) -> int:
    width, height = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    face = cv2.resize(photo, (min(width, height) * 3 // 4,) * 2)
    count = round(minutes * 60 * fps)
    for index in range(count):
        frame = np.full((height, width, 3), 120, np.uint8)
        x = int((width - face.shape[1]) * (0.5 + 0.5 * np.sin(index / 25)))
        y = (height - face.shape[0]) // 2
        frame[y : y + face.shape[0], x : x + face.shape[1]] = face
        if index % 3 == 0:
            frame = cv2.GaussianBlur(frame, (0, 0), 3)
        writer.write(frame)
    writer.release()
    return count


def run_best(video: Path, sample_fps: float, batch_size: int, out: Path) -> tuple[float, int, str]:
    """Seconds, peak RSS in bytes, and the kept frame (index @ ms) of one `fiqa best` run."""
    # This checkout's package, whatever the environment has installed.
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    command = [sys.executable, "-m", "fiqa_cli", "best", str(video)]
    command += ["--fps", str(sample_fps), "--detector", "mtcnn", "--device", "cpu"]
    command += ["--batch-size", str(batch_size), "--out", str(out), "--quiet"]
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=environment)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"fiqa best failed on {video}")
    with out.open(encoding="utf-8") as stream:
        (row,) = csv.DictReader(stream)
    return seconds, usage.ru_maxrss * _MAXRSS_BYTES, f"{row['frame']} @ {row['timestamp_ms']}"


if __name__ == "__main__":
    main()
