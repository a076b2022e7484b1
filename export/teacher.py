"""The dlib teacher of `fiqa train --cr-teacher dlib`: 128-d face descriptors of aligned crops.

dlib's ResNet face descriptor (Davis King; the model file is CC0, 99.38% on LFW per its author)
from the `teacher` extra: dlib-bin and face-recognition-models. Training only: scoring never
imports this module.

How it aligns: on fiqa's own 112x112 ArcFace crop, not on the photo. dlib's 5-point shape
predictor starts from a fixed box on the crop, and dlib's get_face_chip cuts its 150x150 chip from
the crop's pixels. So the teacher sees exactly the pixels the student is trained on (a degraded
crop included), and needs no face detector of its own, whose misses and other choices on a
degraded photo would make the two models disagree about which face, or whether any, is there.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fiqa_cli.errors import FiqaError

TEACHER_EXTRA = "teacher"
INSTALL_HINT = f"pip install 'fiqa[{TEACHER_EXTRA}]' (dlib-bin and face-recognition-models)"
SHAPE_PREDICTOR_FILE = "shape_predictor_5_face_landmarks.dat"
DESCRIPTOR_FILE = "dlib_face_recognition_resnet_model_v1.dat"
# Where dlib's frontal face detector puts the face in fiqa's ArcFace crops (median box over 29
# LFW crops upscaled 2x, in crop pixels): the kind of box its 5-point predictor was trained on.
CROP_FACE_BOX = (15, 32, 92, 110)  # left, top, right, bottom
CHIP_SIZE, CHIP_PADDING = 150, 0.25  # dlib's descriptor input, as its examples cut it
BATCH_SIZE = 32


class TeacherUnavailable(FiqaError):
    """The teacher's packages or model files are missing."""


def dlib_model_files() -> tuple[Path, Path]:
    """The shape predictor and descriptor files of face-recognition-models.

    Found through the package's location rather than by importing it: its __init__ imports
    pkg_resources, which recent setuptools no longer provides.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise TeacherUnavailable(
            f"the dlib teacher needs the `{TEACHER_EXTRA}` extra: face-recognition-models is "
            f"not installed; {INSTALL_HINT}"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "models"
    files = folder / SHAPE_PREDICTOR_FILE, folder / DESCRIPTOR_FILE
    missing = [path.name for path in files if not path.is_file()]
    if missing:
        raise TeacherUnavailable(f"face-recognition-models lacks {', '.join(missing)} in {folder}")
    return files


def _import_dlib():
    try:
        import dlib
    except ImportError as error:
        raise TeacherUnavailable(
            f"the dlib teacher needs the `{TEACHER_EXTRA}` extra: dlib is not installed "
            f"({error}); {INSTALL_HINT}"
        ) from None
    return dlib


def check_teacher_installed() -> None:
    """Raise TeacherUnavailable, naming the extra, unless dlib and its model files are there."""
    _import_dlib()
    dlib_model_files()


class DlibTeacher:
    """Raw (not centred) 128-d dlib descriptors of 112x112 RGB ArcFace crops."""

    name = "dlib"

    def __init__(self) -> None:
        dlib = _import_dlib()
        shape_file, descriptor_file = dlib_model_files()
        self._dlib = dlib
        self._shape_predictor = dlib.shape_predictor(str(shape_file))
        self._descriptor = dlib.face_recognition_model_v1(str(descriptor_file))

    def embed(self, crops_rgb: Sequence[np.ndarray]) -> np.ndarray:
        """N x 128 float32 descriptors of N uint8 RGB ArcFace crops."""
        return self.embed_faces(crops_rgb, [CROP_FACE_BOX] * len(crops_rgb))

    def embed_faces(
        self, images_rgb: Sequence[np.ndarray], boxes: Sequence[tuple[int, int, int, int]]
    ) -> np.ndarray:
        """N x 128 descriptors of the face in each box (left, top, right, bottom) of N images."""
        chips = []
        for rgb, box in zip(images_rgb, boxes, strict=True):
            rgb = np.ascontiguousarray(rgb)
            shape = self._shape_predictor(rgb, self._dlib.rectangle(*map(int, box)))
            chips.append(self._dlib.get_face_chip(rgb, shape, size=CHIP_SIZE, padding=CHIP_PADDING))
        descriptors = []
        for start in range(0, len(chips), BATCH_SIZE):
            batch = chips[start : start + BATCH_SIZE]
            descriptors.extend(self._descriptor.compute_face_descriptor(batch))
        return np.array([np.asarray(d) for d in descriptors], dtype=np.float32).reshape(-1, 128)
