"""Quality-model throughput on a CUDA GPU (issue 6): aligned crops/s of the default model and
of a seeded iresnet100 export at several batch sizes (onnxruntime's CUDA provider with IO
binding, the path `fiqa score --device cuda` takes), and images/s of `fiqa score --device cuda`
end to end on LFW photos with SCRFD. Run through `benchmarks/gpu.sh`, which installs first.

    python benchmarks/gpu_throughput.py [--shared PATH] [--images N] [--batch-sizes 1,8,...]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
from common import (
    add_shared_argument,
    largest_face_crops,
    lfw_photos,
    print_table,
    seeded_backbone,
    spread_sample,
)

from fiqa_cli.commands.score import score
from fiqa_cli.paths import default_model_path
from fiqa_cli.runtime.detect import create_detector
from fiqa_cli.runtime.providers import CUDA, select_providers
from fiqa_cli.runtime.quality_model import QualityModel

SCRFD = "scrfd_2.5g_bnkps.onnx"
TIMED_SECONDS = 3.0  # per batch size: enough batches for a stable rate


def main() -> None:
    args = _parse_args()
    providers = select_providers("cuda")
    print(f"GPU: {_gpu_name()}")
    paths = spread_sample(lfw_photos(args.shared), args.images)
    detector_path = args.shared / "models" / SCRFD
    detector = create_detector("scrfd", detector_path, providers)
    crops = [crop for _, crop in largest_face_crops(paths[:256], detector)]

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        models = {"default": default_model_path(), "iresnet100": _iresnet100(Path(folder))}
        for label, model_path in models.items():
            model = QualityModel(model_path, providers)
            if CUDA not in model.active_providers:
                raise SystemExit("onnxruntime did not give the session CUDA: see `fiqa doctor`")
            for batch in args.batch_sizes:
                rows.append(
                    [label, "crops", str(batch), f"{_crops_per_second(model, crops, batch):.0f}"]
                )
            for batch in args.end_to_end_batch_sizes:
                rate = _images_per_second(paths, model_path, detector_path, batch)
                rows.append([label, "fiqa score images", str(batch), f"{rate:.1f}"])
    print_table(["model", "unit", "batch", "per second"], rows)
    print(f"{len(paths)} LFW photos for fiqa score (SCRFD 2.5g on CUDA), {len(crops)} crops")


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_shared_argument(parser)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--batch-sizes", type=_sizes, default=[1, 8, 32, 64, 128, 256])
    parser.add_argument("--end-to-end-batch-sizes", type=_sizes, default=[64, 256])
    return parser.parse_args()


def _sizes(value: str) -> list[int]:
    return [int(size) for size in value.split(",")]


def _gpu_name() -> str:
    try:
        query = ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"]
        return subprocess.run(query, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (nvidia-smi not available)"


def _iresnet100(folder: Path) -> Path:
    from fiqa_cli.export.onnx_export import export_model

    return export_model(
        seeded_backbone("iresnet100"), folder / "iresnet100.onnx", architecture="iresnet100"
    )


def _crops_per_second(model: QualityModel, crops: list[np.ndarray], batch: int) -> float:
    chunk = [crops[i % len(crops)] for i in range(batch)]
    model.predict(chunk)  # binds this batch size's buffers
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < TIMED_SECONDS:
        model.predict(chunk)
        done += batch
    return done / (time.perf_counter() - start)


def _images_per_second(paths: list[Path], model: Path, detector: Path, batch: int) -> float:
    arguments = [
        *map(str, paths),
        *("--out", os.devnull, "--quiet", "--device", "cuda", "--model", str(model)),
        *("--detector", "scrfd", "--detector-model", str(detector), "--batch-size", str(batch)),
    ]
    start = time.perf_counter()
    score.main(arguments, standalone_mode=False)
    return len(paths) / (time.perf_counter() - start)


if __name__ == "__main__":
    main()
