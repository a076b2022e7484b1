"""Write the aligned crops of `fiqa score --save-crops`, named after their input."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np

from fiqa_cli.errors import FiqaError
from fiqa_cli.runtime.safe_write import UnsafeTargetError, write_replacing

# The file-name limit of nearly every file system (NAME_MAX), in bytes.
NAME_MAX_BYTES = 255


class CropSaveError(FiqaError):
    """A crop could not be written; the message says why."""


def crop_name(path: str, face_index: int) -> str:
    """`STEM_HASH_faceN.png`: the hash of the full input path keeps crops of same-named files
    apart and gives the same name again on a resumed run. A long stem is cut so the name
    stays within NAME_MAX bytes (the hash still tells such inputs apart)."""
    raw = path.encode("utf-8", "surrogateescape")
    digest = hashlib.sha1(raw).hexdigest()[:10]
    ending = f"_{digest}_face{face_index}.png"
    stem = Path(path).stem.encode("utf-8", "surrogateescape")
    stem = stem[: NAME_MAX_BYTES - len(ending)]
    # A cut through a multi-byte character leaves bytes that surrogateescape keeps as they are.
    return stem.decode("utf-8", "surrogateescape") + ending


def write_png(target: Path, image: np.ndarray) -> None:
    """Write `image` as a PNG at `target`, never through a link planted there. Python writes
    the bytes, so any file name works (OpenCV's own writer cannot take every one) and a failure
    raises UnsafeTargetError (or cv2.error) instead of passing silently; no half-written file
    is left behind."""
    write_replacing(target, cv2.imencode(".png", image)[1].tobytes())


def save_crop(folder: Path, path: str, face_index: int, crop: np.ndarray) -> Path:
    """Write `crop` as a PNG in `folder`; CropSaveError when it cannot be."""
    target = folder / crop_name(path, face_index)
    try:
        write_png(target, crop)
    except UnsafeTargetError as error:
        raise CropSaveError(f"crop not saved: {error}") from None
    except cv2.error as error:
        raise CropSaveError(f"crop not saved: {error}") from None
    return target
