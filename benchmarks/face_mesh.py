"""What MediaPipe's face mesh (issue 31) costs in `fiqa score --measures`, and how the head pose
from it compares with the 5-point pose on LFW photos.

Cost: `fiqa score --measures` end to end per photo (in-process, as shipped: the mesh in the
preparing workers) against the same without the mesh (the measures before issue 31 phase 2)
and with a flip-averaged mesh (two inferences per face), runs interleaved, best of --rounds;
and, per face, `measure_face` and the mesh alone (crop and inference, one thread as
`fiqa score`'s workers run it, and onnxruntime's default threads).

Pose: the shipped mean 3D face (tools/mesh_mean_face.py; none of the measured photos among its
references) fitted to the mesh by fiqa_cli/runtime/mesh_pose.py. Both estimates are measured
as benchmarks/pose_estimates.py does: each photo and its mirror image are detected afresh, so
yaw(flipped) should be -yaw, pitch(flipped) = pitch; a photo rotated by ROLL_DEGREES should
change roll by as much. No photo's true pose is known. A third row averages each mesh with that
of the mirrored crop (two inferences), which cancels the model's own left-right bias; the
shipped pose corrects a single mesh's yaw and roll towards it with constants fitted on the
reference faces (mesh_pose.py).

    python benchmarks/face_mesh.py [--shared PATH] [--images 40] [--timed 100] [--rounds 3]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from unittest import mock

import numpy as np
from common import REPO_ROOT, add_shared_argument, lfw_photos, print_table, spread_sample
from pose_estimates import rotated

from fiqa_cli.choices import CENTRAL_FACE
from fiqa_cli.commands.score import score
from fiqa_cli.paths import face_mesh_model_path
from fiqa_cli.runtime import build
from fiqa_cli.runtime.decode import read_image
from fiqa_cli.runtime.detect import Face, create_detector
from fiqa_cli.runtime.face_choice import chosen_face_index
from fiqa_cli.runtime.face_mesh import FaceMesh
from fiqa_cli.runtime.faces import aligned_detected
from fiqa_cli.runtime.measures import measure_face, pose_from_landmarks
from fiqa_cli.runtime.mesh_pose import mean_face, mesh_pose, raw_mesh_pose
from fiqa_cli.runtime.providers import CPU, shared_cpu_options

sys.path.insert(0, str(REPO_ROOT / "tools"))
from mesh_mean_face import (  # noqa: E402
    REFERENCES,
    FlipAveragedMesh,
    mirror_partners,
    reference_photos,
)

ROLL_DEGREES = 15.0
# ISO/IEC 19794-5's limit on yaw and pitch (the icao profile's).
ICAO_DEGREES = 5.0


def central(image: np.ndarray, detector) -> Face | None:
    faces = detector.detect(image)
    return faces[chosen_face_index(faces, image.shape[:2], CENTRAL_FACE)] if faces else None


def timings(photos, detector, rounds: int) -> list[list[str]]:
    prepared = []
    for path in photos:
        image = read_image(path)
        faces = detector.detect(image)
        prepared += [(image, found, faces) for found in aligned_detected(image, faces, "largest")]
    prepared = [item for item in prepared if item[1].crop is not None]
    arguments = [*map(str, photos), "--measures", "--out", "/dev/null", "--quiet"]
    arguments += ["--device", "cpu", "--detector", "yunet"]
    variants = {
        "fiqa score --measures without the mesh (before)": lambda *a, **k: None,
        "fiqa score --measures with the mesh (shipped)": build.build_face_mesh,
        "fiqa score --measures, flip-averaged mesh": lambda providers=None, *, threads=None: (
            FlipAveragedMesh(
                face_mesh_model_path(),
                providers or [CPU],
                shared_cpu_options(threads=threads),
                partners=mirror_partners(mean_face()),
            )
        ),
    }
    best = dict.fromkeys(variants, math.inf)
    for round_index in range(rounds + 1):  # round 0 warms up
        for label, face_mesh in variants.items():
            with mock.patch.object(build, "build_face_mesh", face_mesh):
                seconds = _seconds(lambda: score.main(arguments, standalone_mode=False))
            if round_index:
                best[label] = min(best[label], seconds)
    before = 1000 * best[next(iter(variants))] / len(photos)
    rows = [[label, f"{1000 * s / len(photos):.2f}", f"{1000 * s / len(photos) / before:.2f}"]
            for label, s in best.items()]  # fmt: skip
    measures = _per_item(lambda i: measure_face(i[0], i[1].face, i[2], i[1].crop), prepared)
    rows.append(["measure_face without the mesh, per face", f"{measures:.2f}", ""])
    for label, options in (
        ("face mesh alone, 1 thread, per face", shared_cpu_options(threads=1)),
        ("face mesh alone, onnxruntime's default threads", None),
    ):
        mesh = FaceMesh(face_mesh_model_path(), [CPU], options)
        mesh.mesh(prepared[0][0], prepared[0][1].face)
        cost = _per_item(lambda i, m=mesh: m.mesh(i[0], i[1].face), prepared)
        rows.append([label, f"{cost:.2f}", f"{cost / before:.2f}"])
    print(f"{len(prepared)} faces in {len(photos)} LFW photos (YuNet), best of {rounds} rounds")
    return rows


def _per_item(work, items) -> float:
    return 1000 * _seconds(lambda: [work(item) for item in items]) / len(items)


def _seconds(work) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def pose_rows(photos, detector) -> list[list[str]]:
    single = FaceMesh(face_mesh_model_path(), [CPU])
    flipped = FlipAveragedMesh(face_mesh_model_path(), [CPU], partners=mirror_partners(mean_face()))
    estimators = {
        "5-point (before)": lambda view, face: pose_from_landmarks(face.landmarks),
        "mesh PnP, uncorrected": lambda view, face: raw_mesh_pose(
            single.mesh(view, face).points, view.shape
        ),
        "mesh PnP, bias-corrected (shipped)": lambda view, face: mesh_pose(
            single.mesh(view, face).points, view.shape
        ),
        "mesh PnP, flip-averaged": lambda view, face: raw_mesh_pose(
            flipped.mesh(view, face).points, view.shape
        ),
    }
    estimates = {name: [] for name in estimators}
    for path in photos:
        image = read_image(path)
        views = (image, np.ascontiguousarray(image[:, ::-1]), rotated(image, ROLL_DEGREES))
        faces = [central(view, detector) for view in views]
        if any(face is None for face in faces):
            continue
        for name, estimate in estimators.items():
            estimates[name].append(
                [estimate(view, face) for view, face in zip(views, faces, strict=True)]
            )
    rows = []
    for name, values in estimates.items():
        poses = np.array(values)  # photos x (original, flipped, rolled) x (roll, yaw, pitch)
        base, flipped_pose, rolled_pose = poses[:, 0], poses[:, 1], poses[:, 2]
        pitch = base[:, 2]
        within = np.abs(base[:, 1:3]) <= ICAO_DEGREES
        rows.append(
            [
                name,
                str(len(poses)),
                _median_max(flipped_pose[:, 1] + base[:, 1]),
                _median_max(flipped_pose[:, 2] - base[:, 2]),
                _median_max(flipped_pose[:, 0] + base[:, 0]),
                _median_max(rolled_pose[:, 0] - (base[:, 0] - ROLL_DEGREES)),
                f"{pitch.min():.1f} to {pitch.max():.1f}",
                f"{np.median(pitch):.1f}",
                f"{np.median(np.abs(pitch - np.median(pitch))):.1f}",
                f"{np.median(np.abs(base[:, 1])):.1f}",
                f"{within[:, 0].sum()} / {within[:, 1].sum()} / {within.all(axis=1).sum()}",
            ]
        )
    five, _, pnp, _ = (np.array(values)[:, 0] for values in estimates.values())
    for axis, name in ((0, "roll"), (1, "yaw"), (2, "pitch")):
        correlation = np.corrcoef(five[:, axis], pnp[:, axis])[0, 1]
        gap = np.median(np.abs(five[:, axis] - pnp[:, axis]))
        print(
            f"5-point vs mesh {name}: correlation {correlation:.2f}, median |difference| {gap:.1f}"
        )
    return rows


def _median_max(errors: np.ndarray) -> str:
    magnitude = np.abs(errors)
    return f"{np.median(magnitude):.1f} / {magnitude.max():.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_shared_argument(parser)
    parser.add_argument("--images", type=int, default=200, help="photos whose pose is measured")
    parser.add_argument("--timed", type=int, default=100, help="photos timed")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds of each variant")
    parser.add_argument("--skip-timing", action="store_true")
    args = parser.parse_args()
    photos = lfw_photos(args.shared)
    if not args.skip_timing:
        rows = timings(spread_sample(photos, args.timed), create_detector("yunet"), args.rounds)
        print_table(["stage", "ms", "x before"], rows)
        print()
    references = set(reference_photos(photos, REFERENCES))
    measured = [path for path in spread_sample(photos[2:], args.images) if path not in references]
    header = ["pose", "faces", "yaw flip |e| p50/max", "pitch flip", "roll flip", "roll +15"]
    header += ["pitch range", "pitch p50", "pitch MAD", "|yaw| p50", "within 5°: yaw/pitch/both"]
    print_table(header, pose_rows(measured, create_detector("yunet")))
    print("degrees; flip: yaw(flipped) + yaw, pitch(flipped) - pitch, roll(flipped) + roll;")
    print(f"roll: error after a {ROLL_DEGREES:.0f}-degree rotation; MAD: median absolute")
    print("deviation from the median; within: faces with |yaw|, |pitch| <= 5 degrees")


if __name__ == "__main__":
    main()
