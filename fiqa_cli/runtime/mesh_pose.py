"""Head pose from a face's MediaPipe mesh: the rotation that best maps a mean 3D face
(`models/mediapipe_mean_face.npy`, built by tools/mesh_mean_face.py from the shipped mesh
model's own output on LFW photos) onto the mesh's 468 image points, under a pinhole camera.

Yaw = pitch = 0 where the plane through the eye centres and the mouth corners faces the
camera; roll = 0 with the eye line level. Signs as fiqa's 5-point pose (measures.py)."""

from __future__ import annotations

import math
from functools import cache

import cv2
import numpy as np

from fiqa_cli.paths import mean_face_path

# The model reads a face turned towards the image right as turned further than its mirror
# image towards the left, and rolls both a little (docs/face_mesh.md). Averaging each mesh with
# that of the mirrored crop cancels it at twice the cost; these, fitted by tools/mesh_mean_face.py
# to that average on its reference faces, take the single mesh's pose part of the way there.
_YAW_SLOPES = (0.935, 1.031)  # for yaw > 0, yaw < 0
_YAW_OFFSET = -0.17
_ROLL_OFFSET = 0.38


@cache
def mean_face() -> np.ndarray:
    """The mean 3D face, 468 x 3, inter-ocular distance 1, in its own frame (x along the eye
    line towards the image right, y down towards the mouth, z away from the camera)."""
    return np.load(mean_face_path()).astype(np.float64)


def mesh_pose(
    points: np.ndarray, image_shape: tuple[int, ...]
) -> tuple[float, float, float] | None:
    """Roll, yaw, pitch in degrees of the mesh `points` (`raw_mesh_pose`), corrected for the
    mesh model's left-right bias."""
    pose = raw_mesh_pose(points, image_shape)
    if pose is None:
        return None
    roll, yaw, pitch = pose
    slope = _YAW_SLOPES[0] if yaw > 0 else _YAW_SLOPES[1]
    return roll + _ROLL_OFFSET, slope * yaw + _YAW_OFFSET, pitch


def raw_mesh_pose(
    points: np.ndarray, image_shape: tuple[int, ...]
) -> tuple[float, float, float] | None:
    """Roll, yaw, pitch in degrees of the mesh `points` (468 x 2 or 3, photo pixels) in a photo
    of `image_shape`: roll positive with the image-right eye lower, yaw positive with the nose
    towards the image right, pitch positive with the chin up. The camera's focal length is the
    photo's long side (its field of view unknown) and its centre the photo's. None where no
    pose fits (points not finite)."""
    if not np.all(np.isfinite(points[:, :2])):
        return None
    height, width = image_shape[:2]
    focal = float(max(height, width))
    camera = np.array([[focal, 0, (width - 1) / 2], [0, focal, (height - 1) / 2], [0, 0, 1]])
    # SQPnP finds the global minimum; the iterative default, started from nothing, settled on
    # the face turned 180 degrees in some LFW photos (docs/face_mesh.md).
    ok, rotation_vector, _ = cv2.solvePnP(
        mean_face(),
        np.ascontiguousarray(points[:, :2], dtype=np.float64),
        camera,
        None,
        flags=cv2.SOLVEPNP_SQPNP,
    )
    if not ok:
        return None
    rotation, _ = cv2.Rodrigues(rotation_vector)
    across, forward = rotation[:, 0], -rotation[:, 2]  # the eye line; out of the face
    roll = math.degrees(math.atan2(across[1], across[0]))
    yaw = math.degrees(math.atan2(forward[0], -forward[2]))
    pitch = math.degrees(math.atan2(-forward[1], -forward[2]))
    return roll, yaw, pitch
