"""What the benchmark scripts share: where the shared data lives, which LFW photos they time,
and how their tables are printed."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent


def add_shared_argument(parser: argparse.ArgumentParser) -> None:
    """--shared PATH, defaulting to $FIQA_SHARED, else ../shared beside the repository."""
    default_shared = os.environ.get("FIQA_SHARED", REPO_ROOT.parent / "shared")
    parser.add_argument("--shared", type=Path, default=Path(default_shared))


def lfw_photos(shared: Path) -> list[Path]:
    """Every LFW devtrain photo under `shared`, sorted; exits with a hint when there are none."""
    images = shared / "data" / "lfw-devtrain" / "images"
    photos = sorted(images.glob("*/*.jpg"))
    if not photos:
        raise SystemExit(f"LFW devtrain images not found under {shared} (use --shared)")
    return photos


def spread_sample(paths: list[Path], count: int) -> list[Path]:
    """`count` photos evenly spaced over the sorted list, so that many people appear."""
    step = max(1, len(paths) // count)
    return paths[::step][:count]


def seeded_backbone(arch: str, seed: int = 0):
    """A randomly initialised backbone in eval mode: the arithmetic of a trained one, for
    timing, without weights the repository does not have (needs torch)."""
    import torch

    from fiqa_cli.export.backbones import create_backbone

    torch.manual_seed(seed)
    return create_backbone(arch).eval()


def largest_face_crops(photos: list[Path], detector) -> list[tuple[Path, np.ndarray]]:
    """(photo, aligned crop of its largest face) for each photo in which `detector` (a
    fiqa_cli.runtime.detect.Detector) finds a face."""
    from fiqa_cli.choices import LARGEST_FACE
    from fiqa_cli.runtime.decode import read_image
    from fiqa_cli.runtime.faces import aligned_face

    crops = []
    for photo in photos:
        found = aligned_face(read_image(photo), detector, LARGEST_FACE)
        if not isinstance(found, str):
            crops.append((photo, found.crop))
    return crops


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Columns padded to their widest cell, the first (labels) left-aligned, numbers right."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, ["-" * width for width in widths], *rows]:
        cells = [cell.rjust(width) for cell, width in zip(row, widths, strict=True)]
        cells[0] = row[0].ljust(widths[0])
        print("  ".join(cells))
