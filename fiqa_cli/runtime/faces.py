"""The one face path from a decoded photo to aligned crops: detect, choose the faces that
count, refuse those cut off by the border, align the rest. Scoring, evaluation, training and
the benchmarks all take their faces from here, so a face one of them refuses, all refuse."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fiqa_cli.choices import ALL_FACES
from fiqa_cli.runtime.align import align_face
from fiqa_cli.runtime.detect import Detector, Face
from fiqa_cli.runtime.face_choice import chosen_face_index

NO_FACE_MESSAGE = "no face detected"
CUT_OFF_MESSAGE = (
    "face cut off by the image border (too close to the camera?): both eyes, the nose and "
    "the mouth corners must be inside the image"
)


@dataclass(frozen=True)
class FoundFace:
    """A face that counts, with its aligned crop, or with the reason it has none."""

    index: int  # position among the detected faces (0 = largest box)
    face: Face
    crop: np.ndarray | None  # 112x112 BGR; None when the face cannot be aligned
    problem: str = ""


def aligned_faces(image: np.ndarray, detector: Detector, choice: str) -> list[FoundFace]:
    """The faces `choice` (largest, central or all; `fiqa_cli.runtime.face_choice`) picks in
    a BGR image, each aligned or refused; an empty list when no face is detected."""
    return aligned_detected(image, detector.detect(image), choice)


def aligned_detected(image: np.ndarray, faces: list[Face], choice: str) -> list[FoundFace]:
    """`aligned_faces` for faces already detected in `image` (largest first), for callers
    that need every detected face too."""
    if not faces:
        return []
    height, width = image.shape[:2]
    if choice == ALL_FACES:
        chosen = list(enumerate(faces))
    else:
        index = chosen_face_index(faces, (height, width), choice)
        chosen = [(index, faces[index])]
    return [
        FoundFace(index, face, align_face(image, face.landmarks))
        if face.landmarks_inside(width, height)
        else FoundFace(index, face, None, CUT_OFF_MESSAGE)
        for index, face in chosen
    ]


def aligned_face(image: np.ndarray, detector: Detector, choice: str) -> FoundFace | str:
    """The one face that stands for a photo (`choice`: largest or central), or why there is
    none: NO_FACE_MESSAGE or the face's own problem."""
    found = aligned_faces(image, detector, choice)
    if not found:
        return NO_FACE_MESSAGE
    return found[0] if found[0].crop is not None else found[0].problem
