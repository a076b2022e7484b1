"""Does an int8 default model pay (issue 21)? The default model quantised by `fiqa export --int8`'s
code (static, calibrated on aligned crops) against the float32 file, on held-out faces.

Crops: the central face of LFW devtrain photos of the held-out identities (the split rule of
`tools/split_identities.py`), MTCNN-aligned. The first `--calibration` crops calibrate the
activation ranges; the rest are the test set. Reported, all in one process: Spearman of int8
against fp32 qualities on the test crops (the gate: at least 0.99), the largest quality
difference, the EDC pAUC (0-20% discard, FMR 1e-3, `mobilefacenet_eval.onnx` comparisons of the
test crops) of each, and crops/s of each at `--batch`, measured in alternating rounds.

    python benchmarks/int8.py [--shared PATH] [--images 700] [--calibration 200] [--batch 16]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import REPO_ROOT, add_shared_argument, lfw_photos, print_table, spread_sample

from fiqa_cli.choices import CENTRAL_FACE, CPU
from fiqa_cli.evaluation.edc import all_pairs_comparisons, edc_curve
from fiqa_cli.evaluation.recognition import FaceRecognizer
from fiqa_cli.export.quantize import MIN_RANK_CORRELATION, quantize, rank_correlation
from fiqa_cli.paths import default_model_path
from fiqa_cli.runtime.decode import read_image
from fiqa_cli.runtime.detect import create_detector
from fiqa_cli.runtime.faces import aligned_face
from fiqa_cli.runtime.quality_model import QualityModel

sys.path.insert(0, str(REPO_ROOT / "tools"))
from split_identities import is_held_out  # noqa: E402

FMR = 1e-3
MAX_DISCARD = 0.2
ROUNDS = 3


def held_out_crops(shared: Path, count: int) -> tuple[list[np.ndarray], list[str]]:
    photos = [photo for photo in lfw_photos(shared) if is_held_out(photo.parent.name, 5)]
    detector = create_detector("mtcnn")
    crops, identities = [], []
    for photo in spread_sample(photos, count):
        found = aligned_face(read_image(photo), detector, CENTRAL_FACE)
        if not isinstance(found, str):
            crops.append(found.crop)
            identities.append(photo.parent.name)
    return crops, identities


def crops_per_second(model: QualityModel, crops: list[np.ndarray], seconds: float) -> float:
    model.predict(crops)
    start, done = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        model.predict(crops)
        done += len(crops)
    return done / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_shared_argument(parser)
    parser.add_argument("--images", type=int, default=700)
    parser.add_argument("--calibration", type=int, default=200)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()

    crops, identities = held_out_crops(args.shared, args.images)
    calibration, test = crops[: args.calibration], crops[args.calibration :]
    test_identities = np.array(identities[args.calibration :])
    fp32 = QualityModel(default_model_path(), [CPU])
    with tempfile.TemporaryDirectory() as folder:
        int8_path = Path(folder) / "int8.onnx"
        quantize(default_model_path(), int8_path, fp32.preprocess(calibration))
        int8 = QualityModel(int8_path, [CPU])
        qualities = {"fp32": fp32.predict(test), "int8": int8.predict(test)}
        batch = test[: args.batch]
        speeds: dict[str, list[float]] = {"fp32": [], "int8": []}
        for _ in range(ROUNDS):
            for name, model in (("fp32", fp32), ("int8", int8)):
                speeds[name].append(crops_per_second(model, batch, args.seconds))

    recognizer = FaceRecognizer(args.shared / "models" / "mobilefacenet_eval.onnx")
    comparisons = all_pairs_comparisons(recognizer.embed(np.stack(test)), test_identities, FMR)
    threshold = comparisons.non_mated.threshold(FMR)
    rows = []
    for name, values in qualities.items():
        curve = edc_curve(
            values, comparisons.mated_a, comparisons.mated_b, comparisons.mated_scores, threshold
        )
        rows.append(
            [
                name,
                f"{curve.area(MAX_DISCARD):.5f}",
                f"{np.median(speeds[name]):.1f}",
                " ".join(f"{s:.1f}" for s in speeds[name]),
            ]
        )
    print_table(
        ["model", f"pAUC 0-{MAX_DISCARD:.0%} FMR {FMR:g}", "crops/s (median)", "rounds"], rows
    )
    spearman = rank_correlation(qualities["fp32"], qualities["int8"])
    print(
        f"\n{len(test)} held-out test crops of {len(set(test_identities))} identities "
        f"({len(comparisons.mated_scores)} mated comparisons), {len(calibration)} calibration "
        f"crops, batch {args.batch}"
    )
    print(
        f"Spearman int8 vs fp32: {spearman:.4f} (gate {MIN_RANK_CORRELATION}); max |difference| "
        f"{np.abs(qualities['fp32'] - qualities['int8']).max():.4f}"
    )
    print(f"int8 / fp32 speed: {np.median(speeds['int8']) / np.median(speeds['fp32']):.2f}x")


if __name__ == "__main__":
    main()
