"""The prepared GPU check (issues 6, 34): one table of what a CUDA machine gives fiqa.

Run through `benchmarks/gpu.sh WHEEL_DIR`, which installs first. Sections, each printed as it
finishes (a run cut short still shows what it measured), then the whole table:

- parity: the same photos scored by `fiqa score` on the CPU and on `--device`: largest and
  median |quality difference|, largest box-corner difference (default options: full fp32);
- start: one photo, `fiqa score one.jpg --device D --out -` from process start to its row;
- end to end: photos/s of `fiqa score --device D` over `--images` LFW photos, default detector
  and SCRFD-2.5G;
- crops/s of the quality model alone (IO binding, as `fiqa score` runs it) at each batch size,
  for the default model and a seeded iresnet100 in fp32 and fp16;
- training: images/s of `fiqa train` (mobilefacenet, bf16 autocast on CUDA) on aligned crops;
- NCCL: a one-process `torchrun` of `fiqa train`, and whether NCCL had to guess its GPU;
- CPU workers: photos/s of `fiqa score --device cpu --workers W` for W = 1, 2, 4, ... up to the
  usable CPUs, then with every CPU a worker and 2, 4, 8 `--inference-sessions` (issue 34: one
  session's batch spread over 16 cores left most of them idle).

On a machine without CUDA, `--device cpu` runs every section on the CPU (a dry run of the
script; NCCL is skipped): `python benchmarks/gpu_throughput.py --device cpu --quick`.

    python benchmarks/gpu_throughput.py [--shared PATH] [--device cuda|cpu] [--images N]
        [--batch-sizes 1,8,...] [--seconds S] [--quick]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from common import (
    add_shared_argument,
    largest_face_crops,
    lfw_photos,
    print_table,
    seeded_backbone,
    spread_sample,
)

from fiqa_cli.paths import default_model_path
from fiqa_cli.runtime.build import build_detector
from fiqa_cli.runtime.providers import CUDA, select_providers, usable_cpus
from fiqa_cli.runtime.quality_model import QualityModel

SCRFD = "scrfd_2.5g_bnkps.onnx"
Row = list[str]


def main() -> None:
    args = _parse_args()
    if args.quick:
        args.images, args.batch_sizes, args.seconds = 40, [1, 8], 0.5
    print(f"device: {args.device}; GPU: {_gpu_name()}; usable CPUs: {usable_cpus()}", flush=True)
    every_photo = lfw_photos(args.shared)
    photos = spread_sample(every_photo, args.images)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        # Consecutive photos, so that people have several: training needs identities.
        crops = _crop_folder(every_photo[: 120 if args.quick else 800], work / "crops")
        sections: list[Callable[[], list[Row]]] = [
            lambda: _parity(photos[: min(len(photos), 300)], args.device),
            lambda: _start(photos[0], args.device),
            lambda: _end_to_end(photos, args.device, args.shared),
            lambda: _crops_per_second(photos, args, work),
            lambda: _training(crops, args.device, work / "train"),
            lambda: _nccl(crops, work / "ddp") if args.device == "cuda" else [],
            lambda: _cpu_workers(photos, args.workers),
        ]
        for section in sections:
            for row in section():
                print(" | ".join(row), flush=True)
                rows.append(row)
    print()
    print_table(["check", "setting", "value", "unit"], rows)


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_shared_argument(parser)
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument(
        "--batch-sizes", type=_sizes, default=[1, 8, 16, 32, 64, 128, 256, 512, 1024]
    )
    parser.add_argument("--workers", type=_sizes, default=None, help="default: 1, 2, 4, ...")
    parser.add_argument("--seconds", type=float, default=2.0, help="timed per batch size")
    parser.add_argument("--quick", action="store_true", help="a short dry run")
    return parser.parse_args()


def _sizes(value: str) -> list[int]:
    return [int(size) for size in value.split(",")]


def _gpu_name() -> str:
    try:
        query = ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"]
        return subprocess.run(query, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "none found (nvidia-smi not available)"


def _fiqa(*arguments: object, stdin: str | None = None) -> tuple[str, float]:
    """Runs `python -m fiqa_cli ARGUMENTS` in a new process; (stdout, seconds from start)."""
    # PYTHONSAFEPATH: run from a checkout, `-m` would import its fiqa_cli/ (without export/).
    environment = {**os.environ, "PYTHONSAFEPATH": "1"}
    command = [sys.executable, "-m", "fiqa_cli", *map(str, arguments)]
    start = time.perf_counter()
    done = subprocess.run(
        command, input=stdin, capture_output=True, text=True, env=environment, check=False
    )
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 3):
        raise SystemExit(f"{' '.join(command[:6])} ... failed:\n{done.stderr[-2000:]}")
    return done.stdout, seconds


def _score(photos: list[Path], *options: object) -> tuple[list[dict[str, str]], float]:
    listing = "".join(f"{photo}\n" for photo in photos)
    out, seconds = _fiqa("score", "-", "--out", "-", "--quiet", *options, stdin=listing)
    return list(csv.DictReader(io.StringIO(out))), seconds


def _parity(photos: list[Path], device: str) -> list[Row]:
    cpu_rows, _ = _score(photos, "--device", "cpu", "--workers", "4")
    device_rows, _ = _score(photos, "--device", device, "--workers", "4")
    by_path = {row["path"]: row for row in cpu_rows}
    quality, corners = [], []
    for row in device_rows:
        other = by_path.get(row["path"])
        if other and row["status"] == other["status"] == "ok":
            quality.append(abs(float(row["quality"]) - float(other["quality"])))
            corners.append(
                max(abs(float(row[c]) - float(other[c])) for c in ("x1", "y1", "x2", "y2"))
            )
    if not quality:
        return [["parity", f"{len(photos)} photos", "no photo scored ok on both", ""]]
    setting = f"{len(quality)} photos, {device} vs cpu"
    return [
        ["parity", setting, f"{max(quality):.2e}", "max |quality difference|"],
        ["parity", setting, f"{statistics.median(quality):.2e}", "median |quality difference|"],
        ["parity", setting, f"{max(corners):.3f}", "max box corner difference, px"],
    ]


def _start(photo: Path, device: str) -> list[Row]:
    _, seconds = _fiqa("score", photo, "--device", device, "--out", "-", "--quiet")
    return [["start", f"one photo, {device}", f"{seconds:.2f}", "s, process start to its row"]]


def _end_to_end(photos: list[Path], device: str, shared: Path) -> list[Row]:
    rows = []
    for label, options in (
        ("default detector", ()),
        ("SCRFD-2.5G", ("--detector", "scrfd", "--detector-model", shared / "models" / SCRFD)),
    ):
        scored, seconds = _score(photos, "--device", device, *options)
        setting = f"{len(photos)} photos, {label}, {device}"
        rows.append(["end to end", setting, f"{len(scored) / seconds:.1f}", "photos/s"])
    return rows


def _crops_per_second(photos: list[Path], args: argparse.Namespace, work: Path) -> list[Row]:
    providers = select_providers(args.device)
    detector = build_detector("auto")
    crops = [crop for _, crop in largest_face_crops(photos[:256], detector)]
    models = {
        "default": default_model_path(),
        "iresnet100 fp32": _iresnet100(work, fp16=False),
        "iresnet100 fp16": _iresnet100(work, fp16=True),
    }
    rows = []
    for label, path in models.items():
        model = QualityModel(path, providers)
        if args.device == "cuda" and CUDA not in model.active_providers:
            raise SystemExit("onnxruntime did not give the session CUDA: see `fiqa doctor`")
        for batch in args.batch_sizes:
            chunk = [crops[i % len(crops)] for i in range(batch)]
            model.predict(chunk)  # binds this batch size's buffers
            done, start = 0, time.perf_counter()
            while time.perf_counter() - start < args.seconds:
                model.predict(chunk)
                done += batch
            rate = done / (time.perf_counter() - start)
            rows.append(["crops/s", f"{label}, batch {batch}", f"{rate:.0f}", "crops/s"])
    return rows


def _iresnet100(folder: Path, *, fp16: bool) -> Path:
    from fiqa_cli.export.onnx_export import export_model

    name = f"iresnet100-{'fp16' if fp16 else 'fp32'}.onnx"
    backbone = seeded_backbone("iresnet100")
    return export_model(backbone, folder / name, architecture="iresnet100", fp16=fp16)


def _crop_folder(photos: list[Path], root: Path) -> Path:
    """Aligned crops of the photos as ROOT/PERSON/*.jpg, people with two or more crops."""
    detector = build_detector("auto")
    for photo, crop in largest_face_crops(photos, detector):
        target = root / photo.parent.name / f"{photo.stem}.jpg"
        target.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(target), crop)
    for person in list(root.iterdir()):
        if len(list(person.iterdir())) < 2:
            for crop in person.iterdir():
                crop.unlink()
            person.rmdir()
    return root


def _train_options(data: Path, out: Path, steps: int, batch: int) -> list[str]:
    return [
        *("--data", str(data), "--out", str(out), "--arch", "mobilefacenet"),
        *("--batch-size", str(batch), "--max-steps", str(steps), "--log-every", "2"),
        *("--min-images-per-id", "2", "--num-workers", str(max(1, usable_cpus() - 1))),
    ]


def _training(crops: Path, device: str, out: Path) -> list[Row]:
    # The CPU dry run takes a batch its few crops fill.
    steps, batch = (60, 128) if device == "cuda" else (4, 16)
    _fiqa("train", *_train_options(crops, out, steps, batch))
    rates = [
        record["images_per_s"]
        for record in map(json.loads, (out / "log.jsonl").read_text().splitlines())
        if "images_per_s" in record
    ]
    # The first interval holds the loader's start and cuDNN's first searches.
    steady = rates[1:] or rates
    setting = f"mobilefacenet, batch {batch}, {device}"
    return [["training", setting, f"{np.mean(steady):.0f}", "images/s"]]


def _nccl(crops: Path, out: Path) -> list[Row]:
    command = [
        *(sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1"),
        *("-m", "fiqa_cli.export.train", *_train_options(crops, out, 10, 128)),
    ]
    environment = {**os.environ, "PYTHONSAFEPATH": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=environment, check=False)
    guessed = "guessing device id" in done.stderr.lower()
    verdict = f"exit {done.returncode}, {'guessed its GPU' if guessed else 'told its GPU'}"
    return [["NCCL", "torchrun, 1 process, 10 steps", verdict, ""]]


def _cpu_workers(photos: list[Path], workers: list[int] | None) -> list[Row]:
    cpus = usable_cpus()
    counts = workers or [w for w in (1, 2, 4, 8, 16, 32, 64) if w <= cpus] or [1]
    rows = []
    for count in counts:
        scored, seconds = _score(photos, "--device", "cpu", "--workers", str(count))
        setting = f"{len(photos)} photos, {count} workers of {cpus} CPUs"
        rows.append(["CPU workers", setting, f"{len(scored) / seconds:.1f}", "photos/s"])
    # Inference with all the workers: one session over every core, or several side by side.
    for sessions in (s for s in (2, 4, 8) if s <= cpus):
        options = ("--workers", str(cpus), "--inference-sessions", str(sessions))
        scored, seconds = _score(photos, "--device", "cpu", *options)
        setting = f"{len(photos)} photos, {cpus} workers, {sessions} inference sessions"
        rows.append(["CPU workers", setting, f"{len(scored) / seconds:.1f}", "photos/s"])
    return rows


if __name__ == "__main__":
    main()
