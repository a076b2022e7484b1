"""Several training roots (`fiqa train --data A --data B`) as one dataset of (input, label).

Each root keeps its own identities: labels run on from one root to the next, so folders of the
same name in two roots (two different datasets' "0001", say) stay two identities.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fiqa_cli.export.image_folder import AlignedCropCache, FaceImageFolder


def image_folders(
    roots: Sequence[Path],
    cache: AlignedCropCache,
    *,
    min_images_per_id: int = 1,
    transform: Callable[[np.ndarray], Any] | None = None,
) -> FaceImageFolder | MultiRootImageFolder:
    """One root's FaceImageFolder as it is (its labels and fingerprint unchanged), or several
    roots combined."""
    folders = [
        FaceImageFolder(root, cache, min_images_per_id=min_images_per_id, transform=transform)
        for root in roots
    ]
    return folders[0] if len(folders) == 1 else MultiRootImageFolder(folders)


class MultiRootImageFolder:
    """The samples of several FaceImageFolder datasets, labels offset root by root.

    `identities` are ROOT/IDENTITY paths, unique across roots; `samples` are (crop, label) with
    the combined labels, as FaceImageFolder's are.
    """

    def __init__(self, folders: Sequence[FaceImageFolder]) -> None:
        if len(folders) < 2:
            raise ValueError("combine two or more roots (use FaceImageFolder for one)")
        self.folders = list(folders)
        self.identities: list[str] = []
        self.samples: list[tuple[Path, int]] = []
        self._label_offsets: list[int] = []
        self._sample_ends: list[int] = []
        for folder in self.folders:
            offset = len(self.identities)
            self._label_offsets.append(offset)
            self.identities.extend(str(folder.root / identity) for identity in folder.identities)
            self.samples.extend((crop, label + offset) for crop, label in folder.samples)
            self._sample_ends.append(len(self.samples))
        self.num_classes = len(self.identities)
        digest = hashlib.sha256(b"multi-root\0")
        for folder in self.folders:
            digest.update(f"{folder.fingerprint}\t{folder.num_classes}\n".encode())
        self.fingerprint = digest.hexdigest()

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, item: int) -> tuple[Any, int]:
        if not 0 <= item < len(self.samples):
            raise IndexError(item)
        index = bisect.bisect_right(self._sample_ends, item)
        start = self._sample_ends[index - 1] if index else 0
        value, label = self.folders[index][item - start]
        return value, label + self._label_offsets[index]
