"""A folder of aligned 112x112 face crops given to `fiqa export` (`--parity-images`, `--int8`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fiqa_cli import model_contract
from fiqa_cli.errors import FiqaError
from fiqa_cli.runtime.decode import DecodeError, read_image
from fiqa_cli.runtime.image_files import IMAGE_SUFFIXES, image_files


def read_aligned_crops(
    folder: Path, *, option: str, limit: int, minimum: int, error: type[FiqaError]
) -> list[np.ndarray]:
    """Up to `limit` crops (BGR, in name order) of `folder`, given as `option`; `error` (with
    the option named) when it is no folder, holds an image that does not decode or is not an
    aligned crop, or holds fewer than `minimum`."""
    if not Path(folder).is_dir():
        raise error(f"{option} {folder} is not a folder of aligned crops")
    size = model_contract.INPUT_SIZE
    crops = []
    for path in image_files(Path(folder))[:limit]:
        try:
            image = read_image(path)
        except DecodeError as problem:
            raise error(f"{option}: {path}: {problem}") from None
        if image.shape[:2] != (size, size):
            raise error(
                f"{option}: {path} is {image.shape[1]}x{image.shape[0]}, not an aligned "
                f"{size}x{size} face crop"
            )
        crops.append(image)
    if len(crops) < minimum:
        raise error(
            f"{option} {folder} holds {len(crops)} aligned crops "
            f"({' '.join(sorted(IMAGE_SUFFIXES))}); it needs at least {minimum} "
            "(`fiqa score --save-crops` makes them)"
        )
    return crops
