"""Which files are images, and the ROOT/IDENTITY/ folder layout of labelled face images."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

# Every suffix of a type `fiqa_cli.runtime.decode.read_image` (OpenCV, behind the header checks
# of `image_header`) reads: the one list for folders of `score`, `best`, `evaluate` and
# training; a file named on the command line is read whatever its suffix.
# tests/test_inputs.py decodes a file of each.
IMAGE_SUFFIXES = frozenset(
    {
        *(".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".dib", ".tif", ".tiff", ".webp", ".jp2"),
        *(".pbm", ".pgm", ".ppm", ".pnm", ".pfm", ".pam", ".sr", ".ras", ".hdr", ".pic"),
        *(".avif", ".gif"),
    }
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
