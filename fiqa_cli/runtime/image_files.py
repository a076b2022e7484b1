"""Which files are images, and the ROOT/IDENTITY/ folder layout of labelled face images."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

# What `fiqa_cli.runtime.decode.read_image` (OpenCV) reads.
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".tif", ".tiff", ".webp", ".jp2", ".pgm", ".ppm"}
)


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()


def image_files(folder: Path) -> list[Path]:
    """The images directly in `folder`, sorted by name."""
    return sorted(path for path in folder.iterdir() if is_image_file(path))


def identity_images(root: Path) -> Iterator[tuple[str, list[Path]]]:
    """(identity, its images) for each ROOT/IDENTITY/ folder, in name order."""
    for folder in sorted(path for path in root.iterdir() if path.is_dir()):
        yield folder.name, image_files(folder)
