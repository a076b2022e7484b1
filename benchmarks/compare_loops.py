"""`fiqa score` against the scoring loops a user would otherwise write (issue 6).

On the same LFW devtrain photos, with the same face detector and the same quality model, three
ways of scoring run end to end:

(a) in the style of the released CR-FIQA evaluation code: a torch backbone in eval mode,
    cv2.imread, detection and alignment per image, the crops of each chunk of images forwarded
    as one batch under torch.no_grad (their getQualityScore uses chunks of 16);
(b) in the style of insightface's FaceAnalysis: per image detect, then per face align and run
    the ONNX model in onnxruntime at batch 1, as its model_zoo handlers do;
(c) `fiqa score` in-process, with the same detector and the ONNX model.

The model is a seeded, randomly initialised backbone (the default model's checkpoint is not in
the repository), exported to a temporary ONNX file for (b) and (c), so all three do the same
arithmetic. Its scores mean nothing, but the three must agree on them, which is checked and
printed. Each way runs once on one photo to warm up, then is timed over all photos including
the loading of its model and detector.

    python benchmarks/compare_loops.py [--shared PATH] [--images N] [--detector scrfd|mtcnn]
        [--detector-model PATH] [--arch mobilefacenet|iresnet50] [--faces largest|all]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import torch
from common import add_shared_argument, lfw_photos, print_table, seeded_backbone, spread_sample

from fiqa_cli import model_contract as contract
from fiqa_cli.commands.score import score
from fiqa_cli.export.backbones import create_backbone
from fiqa_cli.export.onnx_export import export_model
from fiqa_cli.runtime.align import align_face
from fiqa_cli.runtime.detect import Face, create_detector
from fiqa_cli.runtime.providers import CPU, usable_cpus
from fiqa_cli.runtime.rows import OK, read_rows

DEFAULT_SCRFD = "scrfd_500m_bnkps.onnx"
# The released getQualityScore.py calls get_batch_feature(..., batch_size=16).
RELEASED_BATCH_SIZE = 16
MODEL_SEED = 0
ARCHITECTURES = ("mobilefacenet", "iresnet50")

FaceKey = tuple[str, int]  # (path as given, face index: 0 = largest box)
Qualities = dict[FaceKey, float]


@dataclass(frozen=True)
class DetectorChoice:
    name: str
    model_path: Path | None  # the SCRFD file; None for MTCNN

    def cli_arguments(self) -> list[str]:
        model = [] if self.model_path is None else ["--detector-model", str(self.model_path)]
        return ["--detector", self.name, *model]


@dataclass(frozen=True)
class Timing:
    method: str
    images: int
    faces: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.images / self.seconds


def main() -> None:
    args = _parse_args()
    paths = spread_sample(lfw_photos(args.shared), args.images)
    detector = DetectorChoice(
        args.detector,
        (args.detector_model or args.shared / "models" / DEFAULT_SCRFD)
        if args.detector == "scrfd"
        else None,
    )
    threads = usable_cpus()
    torch.set_num_threads(threads)
    all_faces = args.faces == "all"
    with tempfile.TemporaryDirectory(prefix="fiqa-compare-") as temp:
        state_dict_path, onnx_path = _seeded_model(args.arch, Path(temp))
        released = partial(
            released_style_loop,
            detector=detector,
            state_dict_path=state_dict_path,
            arch=args.arch,
            all_faces=all_faces,
            batch_size=args.torch_batch,
        )
        face_analysis = partial(
            face_analysis_style_loop, detector=detector, onnx_path=onnx_path, all_faces=all_faces
        )
        fiqa = partial(
            fiqa_score,
            detector=detector,
            onnx_path=onnx_path,
            faces=args.faces,
            scores_path=Path(temp) / "scores.csv",
        )
        results = [
            _timed(
                f"(a) CR-FIQA released style (torch, batch {args.torch_batch})", released, paths
            ),
            _timed("(b) insightface FaceAnalysis style (batch 1)", face_analysis, paths),
            _timed("(c) fiqa score", fiqa, paths),
        ]

    print(
        f"{len(paths)} LFW photos; detector {detector.name}"
        f"{f' ({detector.model_path.name})' if detector.model_path else ''}; model: seeded "
        f"random {args.arch}; faces: {args.faces}; {threads} CPUs (torch threads {threads})\n"
    )
    _print_speeds([timing for timing, _ in results])
    print()
    fiqa_qualities = results[2][1]
    for label, (_, loop_qualities) in zip(("(a)", "(b)"), results[:2], strict=True):
        _print_agreement(f"fiqa vs {label}", fiqa_qualities, loop_qualities)


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_shared_argument(parser)
    parser.add_argument("--images", type=int, default=1000, help="LFW photos to score")
    parser.add_argument("--detector", choices=("scrfd", "mtcnn"), default="scrfd")
    parser.add_argument(
        "--detector-model", type=Path, help=f"SCRFD file (default: SHARED/models/{DEFAULT_SCRFD})"
    )
    parser.add_argument("--arch", choices=ARCHITECTURES, default="mobilefacenet")
    parser.add_argument("--faces", choices=("largest", "all"), default="largest")
    parser.add_argument(
        "--torch-batch",
        type=int,
        default=RELEASED_BATCH_SIZE,
        help="images per forward in loop (a)",
    )
    return parser.parse_args()


def _seeded_model(arch: str, folder: Path) -> tuple[Path, Path]:
    """A seeded random backbone saved as a state_dict (what the released code loads) and
    exported as the ONNX model fiqa and onnxruntime run: the same weights in both."""
    model = seeded_backbone(arch, MODEL_SEED)
    state_dict_path = folder / "backbone.pth"
    torch.save(model.state_dict(), state_dict_path)
    onnx_path = export_model(model, folder / "model.onnx", architecture=arch)
    return state_dict_path, onnx_path


def _chosen(faces: list[Face], all_faces: bool) -> list[tuple[int, Face]]:
    return list(enumerate(faces if all_faces else faces[:1]))


def released_style_loop(
    paths: list[Path],
    *,
    detector: DetectorChoice,
    state_dict_path: Path,
    arch: str,
    all_faces: bool,
    batch_size: int,
) -> Qualities:
    """(a): torch model loaded from a state_dict, images read and aligned one by one, their
    crops forwarded per chunk of `batch_size` images."""
    face_detector = create_detector(detector.name, detector.model_path)
    model = create_backbone(arch)
    model.load_state_dict(torch.load(state_dict_path, weights_only=True))
    model.eval()
    mean = torch.tensor(contract.MEAN).view(1, 3, 1, 1)
    std = torch.tensor(contract.STD).view(1, 3, 1, 1)
    qualities: Qualities = {}
    for start in range(0, len(paths), batch_size):
        keys, crops = [], []
        for path in paths[start : start + batch_size]:
            image = cv2.imread(str(path))
            for index, face in _chosen(face_detector.detect(image), all_faces):
                # The contract's RGB order: the released code's --color_channel RGB.
                crop = cv2.cvtColor(align_face(image, face.landmarks), cv2.COLOR_BGR2RGB)
                crops.append(crop.transpose(2, 0, 1))
                keys.append((str(path), index))
        if not crops:
            continue
        with torch.no_grad():
            batch = torch.Tensor(np.array(crops))
            batch.mul_(contract.PIXEL_SCALE).sub_(mean).div_(std)
            _, quality = model(batch)
        qualities.update(zip(keys, quality[:, 0].tolist(), strict=True))
    return qualities


def face_analysis_style_loop(
    paths: list[Path], *, detector: DetectorChoice, onnx_path: Path, all_faces: bool
) -> Qualities:
    """(b): per image detect; per face align, make a one-crop blob and run the session."""
    face_detector = create_detector(detector.name, detector.model_path)
    session = ort.InferenceSession(str(onnx_path), providers=[CPU])
    output_names = [output.name for output in session.get_outputs()]
    quality_output = output_names.index(contract.QUALITY_OUTPUT)
    # insightface's handlers take one mean and std in pixel units; the contract's channels
    # share their values.
    input_mean = contract.MEAN[0] / contract.PIXEL_SCALE
    input_std = contract.STD[0] / contract.PIXEL_SCALE
    size = (contract.INPUT_SIZE, contract.INPUT_SIZE)
    qualities: Qualities = {}
    for path in paths:
        image = cv2.imread(str(path))
        for index, face in _chosen(face_detector.detect(image), all_faces):
            crop = align_face(image, face.landmarks)
            blob = cv2.dnn.blobFromImages(
                [crop], 1.0 / input_std, size, (input_mean,) * 3, swapRB=True
            )
            outputs = session.run(output_names, {contract.INPUT_NAME: blob})
            qualities[(str(path), index)] = float(outputs[quality_output][0, 0])
    return qualities


def fiqa_score(
    paths: list[Path], *, detector: DetectorChoice, onnx_path: Path, faces: str, scores_path: Path
) -> Qualities:
    """(c): `fiqa score` in-process. Its rows go to a file so that its scores can be compared
    with the loops'; reading them back (milliseconds) is timed with it, against it."""
    arguments = ["--out", str(scores_path), "--quiet", "--model", str(onnx_path)]
    arguments += [*detector.cli_arguments(), "--faces", faces]
    score.main([*map(str, paths), *arguments], standalone_mode=False)
    rows = read_rows(scores_path)
    return {(row["path"], row["face"]): row["quality"] for row in rows if row["status"] == OK}


def _timed(
    method: str, run: Callable[[list[Path]], Qualities], paths: list[Path]
) -> tuple[Timing, Qualities]:
    """`run` once on the first photo (imports, first-call allocations), then timed on all."""
    run(paths[:1])
    start = time.perf_counter()
    qualities = run(paths)
    seconds = time.perf_counter() - start
    return Timing(method, len(paths), len(qualities), seconds), qualities


def _print_speeds(timings: list[Timing]) -> None:
    fiqa = timings[-1]
    header = ["method", "images", "faces", "seconds", "images/s", "fiqa speed ratio"]
    rows = [
        [
            timing.method,
            str(timing.images),
            str(timing.faces),
            f"{timing.seconds:.2f}",
            f"{timing.per_second:.1f}",
            f"{fiqa.per_second / timing.per_second:.2f}x",
        ]
        for timing in timings
    ]
    print_table(header, rows)
    released, face_analysis = timings[0], timings[1]
    print(
        f"\nfiqa / (a): {fiqa.per_second / released.per_second:.2f}x (target >= 2); "
        f"fiqa / (b): {fiqa.per_second / face_analysis.per_second:.2f}x (target >= 1.3)"
    )


def _print_agreement(label: str, fiqa: Qualities, loop: Qualities) -> None:
    """How closely two methods' scores match on the faces both scored; faces only one of them
    scored (e.g. fiqa's refusal of faces cut off by the border) are counted, not compared."""
    common = sorted(fiqa.keys() & loop.keys())
    counts = (
        f"{len(common)} faces in common, {len(fiqa.keys() - loop.keys())} only in fiqa, "
        f"{len(loop.keys() - fiqa.keys())} only in the loop"
    )
    if not common:
        print(f"{label}: {counts}")
        return
    ours = np.array([fiqa[key] for key in common])
    theirs = np.array([loop[key] for key in common])
    difference = float(np.abs(ours - theirs).max())
    # A random model's scores have an arbitrary scale, so the difference is also given
    # relative to the largest score.
    relative = difference / max(float(np.abs(theirs).max()), np.finfo(np.float32).tiny)
    correlation = float(np.corrcoef(ours, theirs)[0, 1]) if theirs.std() > 0 else float("nan")
    print(
        f"{label}: {counts}; max |difference| {difference:.2e} ({relative:.1e} of the largest "
        f"|quality|), Pearson r {correlation:.6f}"
    )


if __name__ == "__main__":
    main()
