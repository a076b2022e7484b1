"""Booth close-ups made from real photos (a face filling most of the frame), for the tests and
`benchmarks/closeup_detection.py`: test material, not part of the installed package."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import cv2
import numpy as np
from insightface.utils import face_align

from fiqa_cli.choices import CENTRAL_FACE
from fiqa_cli.model_contract import INPUT_SIZE
from fiqa_cli.runtime.boxes import transform_points
from fiqa_cli.runtime.detect import Face
from fiqa_cli.runtime.face_choice import chosen_face_index

BOOTH_SIZE = (400, 480)  # width, height of a simulated photo-booth close-up
BOOTH_FRAMINGS = (0.5, 0.7, 0.9)  # face box height as a fraction of the close-up height


def booth_closeup(
    image: np.ndarray,
    box: np.ndarray,
    framing: float,
    size: tuple[int, int] = BOOTH_SIZE,
) -> tuple[np.ndarray, np.ndarray]:
    """An image of `size` (width, height) centred on the face `box` (x1, y1, x2, y2), scaled
    so that the box height is `framing` times the image height; returns it with the 2x3
    affine map from photo to close-up coordinates. Areas outside the photo repeat its border
    pixels, as a real background would continue."""
    width, height = size
    scale = framing * height / (box[3] - box[1])
    centre_x, centre_y = (box[:2] + box[2:]) / 2
    to_closeup = np.float32(
        [[scale, 0, width / 2 - scale * centre_x], [0, scale, height / 2 - scale * centre_y]]
    )
    closeup = cv2.warpAffine(image, to_closeup, size, borderMode=cv2.BORDER_REPLICATE)
    return closeup, to_closeup


def crop_distance(reference: np.ndarray, landmarks: np.ndarray) -> float:
    """Largest distance between two sets of 5 landmarks, in pixels of the aligned crop that
    `reference` defines (so faces of any size are judged on one scale)."""
    with warnings.catch_warnings():
        # insightface calls a scikit-image API deprecated in 0.26
        warnings.simplefilter("ignore", FutureWarning)
        to_crop = face_align.estimate_norm(reference, INPUT_SIZE)
    offsets = transform_points(to_crop, landmarks) - transform_points(to_crop, reference)
    return float(np.linalg.norm(offsets, axis=1).max())


def central_face(faces: Sequence[Face], image_shape: tuple[int, ...]) -> Face | None:
    """The face whose box centre is nearest the image centre (in LFW photos, the labelled
    person; the `central` choice of fiqa_cli.runtime.face_choice), or None when there are
    no faces."""
    if not faces:
        return None
    return faces[chosen_face_index(faces, image_shape[:2], CENTRAL_FACE)]
