"""The samples `fiqa evaluate` measures: which images, their aligned crops, and the
comparisons between them.

An image that cannot be read, or in which no face is detected, has no crop to compare: it is
left out of the evaluation altogether, and so is every listed pair that uses it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fiqa_cli.choices import LARGEST_FACE
from fiqa_cli.errors import FiqaError
from fiqa_cli.runtime.image_files import identity_images

if TYPE_CHECKING:
    from fiqa_cli.evaluation.edc import Comparisons
    from fiqa_cli.evaluation.lfw_pairs import LfwPair
    from fiqa_cli.runtime.detect import Detector

_PROGRESS_EVERY = 200


class EvaluationError(FiqaError):
    """No evaluation is possible on these samples; the message says why."""


@dataclass(frozen=True)
class Sample:
    path: Path
    identity: str


@dataclass(frozen=True)
class EvaluationSet:
    """The samples that yielded a crop, with what each baseline needs."""

    samples: list[Sample]
    crops: np.ndarray  # N x H x W x 3 BGR uint8
    bboxes: np.ndarray | None  # N x 4, None when the inputs are crops already
    det_scores: np.ndarray | None


def identity_samples(
    root: Path, min_images: int, limit_ids: int | None, max_images: int | None = None
) -> list[Sample]:
    """Images of ROOT/IDENTITY/ for identities with at least `min_images`, in name order;
    at most the first `max_images` of each."""
    samples = []
    identities = 0
    for identity, images in identity_images(root):
        if len(images) < min_images:
            continue
        samples.extend(Sample(path, identity) for path in images[:max_images])
        identities += 1
        if identities == limit_ids:
            break
    return samples


def root_samples(
    roots: Sequence[Path], min_images: int, limit_ids: int | None, max_images: int | None = None
) -> list[Sample]:
    """`identity_samples` of each root in turn (`limit_ids` per root). With several roots an
    identity is named by its root's position too (`2:NAME` under the second), so that folders
    of one name under two roots are two people, and no root's identities meet another's."""
    if len(roots) == 1:
        return identity_samples(roots[0], min_images, limit_ids, max_images)
    return [
        Sample(sample.path, f"{position}:{sample.identity}")
        for position, root in enumerate(roots, start=1)
        for sample in identity_samples(root, min_images, limit_ids, max_images)
    ]


def pair_samples(pairs: Sequence[LfwPair]) -> tuple[list[Sample], np.ndarray]:
    """Each image of `pairs` once, in order of appearance, and the pairs as rows (a, b,
    is_mated) of indices into those samples."""
    index: dict[Path, int] = {}
    samples: list[Sample] = []

    def sample_index(path: Path) -> int:
        if path not in index:
            index[path] = len(samples)
            samples.append(Sample(path, path.parent.name))
        return index[path]

    rows = [
        (sample_index(pair.first), sample_index(pair.second), int(pair.same_person))
        for pair in pairs
    ]
    return samples, np.array(rows, dtype=np.int64).reshape(-1, 3)


def prepare_faces(
    samples: list[Sample],
    detector: Detector | None,
    report: Callable[[str], None],
    faces: str = LARGEST_FACE,
) -> tuple[EvaluationSet, np.ndarray]:
    """Read, detect and align every sample; the face that `faces` (largest or central, see
    `fiqa_cli.runtime.face_choice`) picks among those detected is the sample's face.

    With no detector the images are taken to be aligned crops already. Returns the usable
    samples and, for every given sample, its index among them (-1 when left out).
    """
    from fiqa_cli.runtime.decode import DecodeError, read_image
    from fiqa_cli.runtime.faces import aligned_face

    positions = np.full(len(samples), -1, dtype=np.int64)
    crops, chosen, skipped = [], [], []
    for position, sample in enumerate(samples):
        if position and position % _PROGRESS_EVERY == 0:
            report(f"aligned {position}/{len(samples)} images")
        try:
            image = read_image(sample.path)
        except DecodeError as error:
            skipped.append(f"{sample.path}: {error}")
            continue
        if detector is None:
            crops.append(image)
        else:
            found = aligned_face(image, detector, faces)
            if isinstance(found, str):
                skipped.append(f"{sample.path}: {found}")
                continue
            crops.append(found.crop)
            chosen.append(found.face)
        positions[position] = len(crops) - 1
    for reason in skipped:
        report(f"left out {reason}")
    if not crops:
        raise EvaluationError("no usable face in any sample")
    if len({crop.shape for crop in crops}) > 1:
        raise EvaluationError("--detector none needs images of one size (aligned crops)")
    evaluation_set = EvaluationSet(
        [sample for sample, position in zip(samples, positions, strict=True) if position >= 0],
        np.stack(crops),
        np.array([face.bbox for face in chosen]).reshape(-1, 4) if detector else None,
        np.array([face.score for face in chosen]) if detector else None,
    )
    return evaluation_set, positions


def compare(
    embeddings: np.ndarray,
    evaluation_set: EvaluationSet,
    listed_pairs: np.ndarray | None,
    positions: np.ndarray,
    max_fmr: float,
    report: Callable[[str], None],
) -> Comparisons:
    """The listed pairs whose images both have a crop, else all pairs of the evaluated crops."""
    from fiqa_cli.evaluation.edc import all_pairs_comparisons, pair_comparisons

    if listed_pairs is None:
        labels = np.array([sample.identity for sample in evaluation_set.samples])
        return all_pairs_comparisons(embeddings, labels, max_fmr)
    renumbered = positions[listed_pairs[:, :2]]
    usable = (renumbered >= 0).all(axis=1)
    if not usable.all():
        report(f"left out {int((~usable).sum())} pairs with a left-out image")
    mated = listed_pairs[:, 2] == 1
    return pair_comparisons(embeddings, renumbered[usable & mated], renumbered[usable & ~mated])
