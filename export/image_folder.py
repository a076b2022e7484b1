"""Training images stored as ROOT/IDENTITY/*.jpg: aligned 112x112 crops, or raw photos.

A 112x112 image is taken as an ArcFace-aligned crop. Any other image is a raw photo: it is
detected and aligned with the same code `fiqa score` uses, and the crop is kept on disk so that
later epochs, ranks and resumed runs read it instead of detecting again. Photos without a face
are dropped (and remembered as such). When a photo holds several faces, the one the `faces`
choice picks is taken: the largest, or the most central, which is the labelled person in datasets
cut around their subject, such as LFW (`fiqa_cli.runtime.face_choice`).
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fiqa_cli.choices import LARGEST_FACE
from fiqa_cli.errors import FiqaError
from fiqa_cli.model_contract import INPUT_SIZE
from fiqa_cli.runtime.decode import DecodeError, read_image
from fiqa_cli.runtime.image_files import identity_images


class DatasetError(FiqaError, ValueError):
    """A training image folder holds nothing to train on; the message says why."""


class AlignedCropCache:
    """Maps an image file to the file of its aligned 112x112 crop, detecting at most once.

    Crops of raw photos are PNG files under cache_dir/DETECTOR/ (cache_dir/DETECTOR-central/
    for central faces), named by a hash of the photo's resolved path; a photo without a face
    leaves an empty `.noface` marker instead.
    """

    def __init__(
        self,
        cache_dir: Path,
        detector_name: str = "auto",
        detector_model: Path | None = None,
        faces: str = LARGEST_FACE,
    ) -> None:
        self.cache_dir = Path(cache_dir)
        self.detector_name = detector_name
        self.detector_model = detector_model
        self.face_choice = faces
        # Largest-face crops keep the folder they had before the choice existed.
        self._folder_name = detector_name if faces == LARGEST_FACE else f"{detector_name}-{faces}"
        self._detector = None

    def _detector_instance(self):
        from fiqa_cli.runtime.detect import create_detector

        if self._detector is None:
            self._detector = create_detector(self.detector_name, self.detector_model)
        return self._detector

    def crop_path(self, image_path: Path) -> Path | None:
        """The aligned crop of `image_path` (the file itself if already aligned); None: no face.

        Raises fiqa_cli.runtime.decode.DecodeError for a file that holds no readable image.
        """
        key = hashlib.sha256(str(Path(image_path).resolve()).encode()).hexdigest()[:32]
        folder = self.cache_dir / self._folder_name
        crop_file, no_face_file = folder / f"{key}.png", folder / f"{key}.noface"
        if crop_file.is_file():
            return crop_file
        if no_face_file.is_file():
            return None
        image = read_image(image_path)
        if image.shape[:2] == (INPUT_SIZE, INPUT_SIZE):
            return image_path
        # Imported here: alignment pulls in insightface, which aligned-crop datasets never need.
        from fiqa_cli.runtime.crop_files import write_png
        from fiqa_cli.runtime.faces import aligned_face

        found = aligned_face(image, self._detector_instance(), self.face_choice)
        folder.mkdir(parents=True, exist_ok=True)
        if isinstance(found, str):  # no face, or one cut off by the border: nothing to train on
            no_face_file.touch()
            return None
        write_png(crop_file, found.crop)  # renamed into place: a killed run leaves no half PNG
        return crop_file


def aligned_crops(
    image_paths: Iterable[Path], cache: AlignedCropCache, progress_every: int = 500
) -> dict[Path, Path]:
    """Crop files of the images that hold a face, keyed by image; reports progress on stderr."""
    crops = {}
    for done, image_path in enumerate(image_paths, start=1):
        try:
            crop = cache.crop_path(image_path)
        except DecodeError as error:
            print(f"skipping {image_path}: {error}", file=sys.stderr)
            continue
        if crop is not None:
            crops[image_path] = crop
        if done % progress_every == 0:
            print(f"aligning faces: {done} images ({len(crops)} with a face)", file=sys.stderr)
    return crops


class FaceImageFolder:
    """Aligned crops of ROOT/IDENTITY/* as a map-style dataset of (transform(rgb), label).

    Labels number the kept identities in sorted order. An identity is kept when at least
    `min_images_per_id` of its images hold a face.
    """

    def __init__(
        self,
        root: Path,
        cache: AlignedCropCache,
        *,
        min_images_per_id: int = 1,
        transform: Callable[[np.ndarray], Any] | None = None,
    ) -> None:
        self.root = Path(root)
        self.transform = transform
        images = dict(identity_images(self.root))
        if not images:
            raise DatasetError(
                f"{self.root} holds no identity folders (expected ROOT/IDENTITY/*.jpg)"
            )
        crops = aligned_crops([image for found in images.values() for image in found], cache)
        self.samples: list[tuple[Path, int]] = []
        self.identities: list[str] = []
        for identity, found in images.items():
            identity_crops = [crops[image] for image in found if image in crops]
            if len(identity_crops) < min_images_per_id:
                continue
            label = len(self.identities)
            self.identities.append(identity)
            self.samples.extend((crop, label) for crop in identity_crops)
        if not self.samples:
            raise DatasetError(
                f"no identity in {self.root} has {min_images_per_id} or more images with a face"
            )
        self.num_classes = len(self.identities)
        self.fingerprint = self._fingerprint()

    def _fingerprint(self) -> str:
        digest = hashlib.sha256(b"image-folder\0")
        for crop, label in self.samples:
            digest.update(f"{crop.name}\t{crop.stat().st_size}\t{label}\n".encode())
        return digest.hexdigest()

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, item: int) -> tuple[Any, int]:
        crop, label = self.samples[item]
        rgb = read_crop_rgb(crop)
        return (self.transform(rgb) if self.transform else rgb), label


def read_crop_rgb(crop: Path) -> np.ndarray:
    """An aligned crop as RGB, decoded as `fiqa score` decodes its inputs (EXIF rotation,
    alpha, 16-bit and grey handled alike)."""
    try:
        bgr = read_image(crop)
    except DecodeError as error:
        raise OSError(f"cannot read the aligned crop {crop}: {error}") from None
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
