"""Certainty-ratio targets from a teacher recogniser (`fiqa train --cr-teacher dlib`).

A departure from CR-FIQA, where the CR target comes from the backbone being trained and its
ArcFace centres. Here each training sample's CR is measured in a strong recogniser's space:
CCS, the cosine to the mean of the identity's *other* photos (leave one out, so a photo is not
compared with itself), over NNCCS + 1, NNCCS the largest cosine to another identity's mean (the
paper's CR = CCS / (NNCCS + 1); `--cr-formula released` gives CCS / NNCCS). The descriptors are
first centred on the training photos' mean descriptor and re-normalised: dlib's are not centred
(different people's cosines average 0.8), which squeezes the raw CR into a nearly constant target.

Degraded samples get a target too. Each photo has `variants` degraded variants whose degradation
(kind, strength, noise) follows from the photo's pixels and the variant number alone: the teacher
embeds each once (cached on disk), and every epoch the student sees the very same pixels.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fiqa_cli.errors import FiqaError
from fiqa_cli.export.augment import DEGRADATIONS, to_input_tensor
from fiqa_cli.export.image_folder import read_crop_rgb
from fiqa_cli.export.loss import certainty_ratio
from fiqa_cli.export.teacher import DlibTeacher
from fiqa_cli.runtime.safe_write import replacing

TEACHERS = {DlibTeacher.name: DlibTeacher}
# Changing the training degradations changes every degraded variant: their cached descriptors
# must not be reused.
_DEGRADATIONS_DIGEST = hashlib.sha256(repr(DEGRADATIONS).encode()).hexdigest()[:12]
_EMBED_CHUNK = 256


class TeacherTargetError(FiqaError, ValueError):
    """The training set cannot give every sample a teacher target; the message says why."""


def photo_key(crop: Path) -> str:
    """A name for the crop's pixels: a re-aligned or changed crop gets a new one."""
    return hashlib.sha256(Path(crop).read_bytes()).hexdigest()[:32]


def variant_pixels(rgb: np.ndarray, key: str, variant: int) -> np.ndarray:
    """Variant 0 is the crop itself; variant k >= 1 one training degradation of it, drawn from a
    generator seeded by (key, k) alone."""
    if variant == 0:
        return rgb
    seed = hashlib.sha256(f"{key}\t{variant}".encode()).digest()[:8]
    rng = np.random.default_rng(int.from_bytes(seed, "little"))
    degradation = DEGRADATIONS[int(rng.integers(len(DEGRADATIONS)))]
    return degradation(np.ascontiguousarray(rgb), float(rng.random()), rng)


class TeacherEmbeddingCache:
    """Teacher descriptors of crop variants, one .npy file per (photo, variant) under
    folder/TEACHER/; the teacher is loaded only when a descriptor is missing."""

    def __init__(self, folder: Path, teacher_name: str) -> None:
        if teacher_name not in TEACHERS:
            raise ValueError(f"unknown teacher {teacher_name!r}: use one of {sorted(TEACHERS)}")
        self.folder = Path(folder) / teacher_name
        self.teacher_name = teacher_name
        self._teacher = None

    def _file(self, key: str, variant: int) -> Path:
        name = f"{key}-clean.npy" if variant == 0 else f"{key}-{variant}-{_DEGRADATIONS_DIGEST}.npy"
        return self.folder / name

    def descriptors(self, crops: Sequence[Path], keys: Sequence[str], variants: int) -> np.ndarray:
        """N x (1 + variants) x D raw teacher descriptors of each crop's variants."""
        wanted = [(i, v) for i in range(len(crops)) for v in range(1 + variants)]
        missing = [(i, v) for i, v in wanted if not self._file(keys[i], v).is_file()]
        if missing:
            print(
                f"teacher {self.teacher_name}: embedding {len(missing)} of {len(wanted)} crop "
                f"variants (the rest are cached in {self.folder})",
                file=sys.stderr,
            )
            self.folder.mkdir(parents=True, exist_ok=True)
            if self._teacher is None:
                self._teacher = TEACHERS[self.teacher_name]()
        for start in range(0, len(missing), _EMBED_CHUNK):
            chunk = missing[start : start + _EMBED_CHUNK]
            pixels = [variant_pixels(read_crop_rgb(crops[i]), keys[i], v) for i, v in chunk]
            for (i, v), descriptor in zip(chunk, self._teacher.embed(pixels), strict=True):
                path = self._file(keys[i], v)
                # Renamed into place: a killed run never leaves half a file behind.
                with replacing(path) as written, open(written, "xb") as stream:
                    np.save(stream, descriptor)
            print(f"teacher: {start + len(chunk)}/{len(missing)} embedded", file=sys.stderr)
        return np.stack(
            [
                np.stack([np.load(self._file(keys[i], v)) for v in range(1 + variants)])
                for i in range(len(crops))
            ]
        )


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)


def teacher_certainty_ratios(
    descriptors: np.ndarray, labels: np.ndarray, formula: str, *, centre: bool = True
) -> np.ndarray:
    """N x V certainty ratios of N photos' V variants (variant 0 clean), from N x V x D raw
    descriptors: leave-one-out own centre, nearest other identity's centre, both from the clean
    variants, all in the space centred on the clean descriptors' mean (`centre`)."""
    labels = np.asarray(labels)
    counts = np.bincount(labels)
    if not counts.all():
        raise ValueError("labels must number the identities 0 to C-1 without gaps")
    if (counts[labels] < 2).any():
        raise TeacherTargetError(
            "a teacher's certainty ratio compares each photo with its identity's other photos: "
            "every identity needs 2 or more (use --min-images-per-id 2)"
        )
    descriptors = descriptors.astype(np.float64)
    if centre:
        descriptors = descriptors - descriptors[:, 0].mean(axis=0)
    unit = _unit(descriptors)
    clean = unit[:, 0]
    sums = np.zeros((len(counts), clean.shape[1]))
    np.add.at(sums, labels, clean)
    centres = _unit(sums)
    own_centres = _unit(sums[labels] - clean)  # the identity's other photos
    rows = np.arange(len(labels))
    torch_labels = torch.from_numpy(labels).long()
    ratios = np.empty(unit.shape[:2])
    for variant in range(unit.shape[1]):
        cosines = unit[:, variant] @ centres.T
        cosines[rows, labels] = np.sum(unit[:, variant] * own_centres, axis=1)
        ratio = certainty_ratio(torch.from_numpy(cosines), torch_labels, formula).ratio
        ratios[:, variant] = ratio[:, 0].numpy()
    return ratios.astype(np.float32)


class TeacherTargetDataset:
    """A FaceImageFolder-like dataset (its `samples` of (crop, label)) whose items carry the
    teacher's CR: ((input tensor, degraded, target), label). A `degradation_fraction` of the
    samples shows one of the photo's degraded variants; every sample is flipped at random (after
    degrading, so the teacher's variant is the student's up to the mirror image)."""

    def __init__(
        self,
        base: Any,
        cache: TeacherEmbeddingCache,
        *,
        variants: int,
        degradation_fraction: float,
        cr_formula: str,
    ) -> None:
        if degradation_fraction > 0 and variants < 1:
            raise ValueError("degraded samples need one or more degraded variants per photo")
        self.samples: list[tuple[Path, int]] = base.samples
        self.num_classes: int = base.num_classes
        self.variants = variants
        self.degradation_fraction = degradation_fraction
        crops = [crop for crop, _ in self.samples]
        self.keys = [photo_key(crop) for crop in crops]
        labels = np.array([label for _, label in self.samples])
        descriptors = cache.descriptors(crops, self.keys, variants)
        self.targets = teacher_certainty_ratios(descriptors, labels, cr_formula)
        # The photos and labels are the base's; a resumed run checks the teacher settings apart.
        self.fingerprint: str = base.fingerprint
        clean, degraded = self.targets[:, 0], self.targets[:, 1:]
        print(
            f"teacher CR targets: clean mean {clean.mean():.4f} std {clean.std():.4f}"
            + (
                f", degraded mean {degraded.mean():.4f} std {degraded.std():.4f}"
                if variants
                else ""
            ),
            file=sys.stderr,
        )

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, item: int) -> tuple[tuple[torch.Tensor, bool, torch.Tensor], int]:
        crop, label = self.samples[item]
        degraded = bool(self.variants and torch.rand(()) < self.degradation_fraction)
        variant = 1 + int(torch.randint(self.variants, ())) if degraded else 0
        rgb = variant_pixels(read_crop_rgb(crop), self.keys[item], variant)
        if torch.rand(()) < 0.5:
            rgb = rgb[:, ::-1]
        target = torch.tensor(self.targets[item, variant])
        return (to_input_tensor(rgb), degraded, target), label
