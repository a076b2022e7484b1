"""ArcFace 5-point alignment of a detected face to the 112x112 crop the quality model expects."""

from __future__ import annotations

import importlib.util
import sys
import warnings
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np

from fiqa_cli.model_contract import INPUT_SIZE
from fiqa_cli.runtime.boxes import transform_points

_FACE_ALIGN = "insightface.utils.face_align"


def _insightface_face_align() -> ModuleType:
    """insightface's alignment module, loaded from its own file: `import insightface.utils`
    first runs insightface's package __init__, which imports its model zoo, its face-analysis
    app, onnx and ml_dtypes (1.8 of the 2.5 s a one-photo `fiqa score` took), none of which
    the alignment uses (it needs OpenCV, numpy and scikit-image). Registered under its own
    name, so a later `import insightface` (SCRFD) finds it and uses the same module."""
    if _FACE_ALIGN in sys.modules:
        return sys.modules[_FACE_ALIGN]
    package = importlib.util.find_spec("insightface")
    locations = list(package.submodule_search_locations or []) if package else []
    path = Path(locations[0]) / "utils" / "face_align.py" if locations else None
    if path is None or not path.is_file():  # another layout: the ordinary, slower import
        return importlib.import_module(_FACE_ALIGN)
    spec = importlib.util.spec_from_file_location(_FACE_ALIGN, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[_FACE_ALIGN] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[_FACE_ALIGN]
        raise
    return module


face_align = _insightface_face_align()

# Warping straight from a much larger face aliases (bilinear sampling skips pixels), so a
# face more than this many times the crop size is first shrunk with area averaging.
_MAX_DIRECT_SHRINK = 2.0
# insightface calls scikit-image's SimilarityTransform.estimate, deprecated in 0.26; the
# warning would reach every user's stderr (under -q too) and says nothing about their run.
# One filter for the process: warnings.catch_warnings is not thread-safe, and alignment runs
# in several worker threads at once.
warnings.filterwarnings("ignore", category=FutureWarning, module=r"insightface\.utils\.face_align")


def align_face(image_bgr: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Warp the face with `landmarks` (5x2: eyes, nose, mouth corners) to a 112x112 BGR crop."""
    points = np.asarray(landmarks, dtype=np.float32).reshape(5, 2)
    to_crop = face_align.estimate_norm(points, INPUT_SIZE)
    shrink = 1.0 / float(np.sqrt(abs(np.linalg.det(to_crop[:, :2]))))
    if shrink > _MAX_DIRECT_SHRINK:
        image_bgr, points = _prescale_region(
            image_bgr, points, to_crop, _MAX_DIRECT_SHRINK / shrink
        )
    return face_align.norm_crop(image_bgr, points, image_size=INPUT_SIZE)


def _prescale_region(
    image: np.ndarray, points: np.ndarray, to_crop: np.ndarray, factor: float
) -> tuple[np.ndarray, np.ndarray]:
    """Cut the part of the image the crop will show and shrink it by `factor` (area
    averaging); returns it with the landmarks in its coordinates."""
    corners = np.array([[0, 0], [INPUT_SIZE, 0], [0, INPUT_SIZE], [INPUT_SIZE, INPUT_SIZE]])
    from_crop = cv2.invertAffineTransform(to_crop)
    source = transform_points(from_crop, corners)
    x1, y1 = np.maximum(np.floor(source.min(axis=0)).astype(int) - 1, 0)
    x2, y2 = np.minimum(
        np.ceil(source.max(axis=0)).astype(int) + 2, [image.shape[1], image.shape[0]]
    )
    region = image[y1:y2, x1:x2]
    if region.size == 0:  # the face lies outside the image: nothing to shrink
        return image, points
    size = (max(1, round(region.shape[1] * factor)), max(1, round(region.shape[0] * factor)))
    shrunk = cv2.resize(region, size, interpolation=cv2.INTER_AREA)
    scale = np.array([size[0] / region.shape[1], size[1] / region.shape[0]], dtype=np.float32)
    # cv2.resize aligns pixel centres, hence the half-pixel shifts.
    origin = np.array([x1, y1], dtype=np.float32)
    return shrunk, (points - origin + 0.5) * scale - 0.5


def arcface_template(size: int = INPUT_SIZE) -> np.ndarray:
    """The 5 points' places (eyes, nose, mouth corners) in a size x size aligned crop."""
    return face_align.arcface_dst * (size / 112.0)
