"""Where fiqa looks for its models and for the shared test data."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_MODEL_NAME = "fiqa_default.onnx"
# The YuNet face detector of the OpenCV model zoo (MIT), shipped beside the quality model.
YUNET_MODEL_NAME = "face_detection_yunet_2026may.onnx"
# MediaPipe's face mesh (Apache-2.0), converted to ONNX by tools/convert_face_mesh.py.
FACE_MESH_MODEL_NAME = "mediapipe_face_mesh.onnx"
# The mean 3D face the head pose is fitted to, from that model's output on LFW photos
# (tools/mesh_mean_face.py).
MEAN_FACE_NAME = "mediapipe_mean_face.npy"


def models_dir() -> Path:
    """The folder of models shipped inside the installed package."""
    from fiqa_cli import models

    return Path(models.__file__).resolve().parent


def default_model_path() -> Path:
    return models_dir() / DEFAULT_MODEL_NAME


def yunet_model_path() -> Path:
    return models_dir() / YUNET_MODEL_NAME


def face_mesh_model_path() -> Path:
    return models_dir() / FACE_MESH_MODEL_NAME


def mean_face_path() -> Path:
    return models_dir() / MEAN_FACE_NAME


def cache_dir() -> Path:
    """fiqa's cache of things rebuilt when missing: `$XDG_CACHE_HOME/fiqa`, else `~/.cache/fiqa`."""
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base).expanduser() if base else Path.home() / ".cache") / "fiqa"


def insightface_model_root() -> Path:
    """insightface's model root: `$INSIGHTFACE_HOME/models`, else `~/.insightface/models`."""
    home = os.environ.get("INSIGHTFACE_HOME")
    return Path(home).expanduser() / "models" if home else Path.home() / ".insightface" / "models"
