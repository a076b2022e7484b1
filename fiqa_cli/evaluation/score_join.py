"""The quality a `fiqa score` output file gives each evaluated face.

Rows are joined by path (relative paths resolve against the current directory, as
`fiqa score` writes them as given) and, among an image's `ok` rows, by the detection box that
overlaps the evaluated face best. A face without such a row gets the lowest quality, -inf: a
quality tool that cannot score an image would reject it first.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fiqa_cli.evaluation.samples import EvaluationSet
from fiqa_cli.runtime.boxes import iou
from fiqa_cli.runtime.rows import OK, ScoreFileError, read_rows

# A score row belongs to the evaluated face only if their boxes overlap at least this much;
# detectors differ in box conventions, so this is lenient.
_MIN_BOX_IOU = 0.3
_BOX_COLUMNS = ("x1", "y1", "x2", "y2")


@dataclass(frozen=True)
class ScoredFace:
    face: int
    quality: float
    bbox: np.ndarray | None


def read_scored_faces(path: Path) -> dict[str, list[ScoredFace]]:
    """The `ok` rows of a `fiqa score` CSV or JSONL file by resolved image path, face 0 first.

    Raises fiqa_cli.runtime.rows.ScoreFileError for a file `fiqa score` did not write, or
    one that gives a face two different rows (files of two runs joined): which one counts
    would be a guess. A row repeated as it is counts once."""
    faces: dict[str, list[ScoredFace]] = {}
    seen: dict[tuple[str, int], tuple[object, ...]] = {}
    for row in read_rows(path):
        if row["status"] != OK:
            continue
        if row["quality"] is None:
            raise ScoreFileError(f"{path}: an `ok` row of {row['path']} has no quality")
        bbox = [row[column] for column in _BOX_COLUMNS]
        key, values = (_path_key(row["path"]), row["face"] or 0), (row["quality"], *bbox)
        if seen.setdefault(key, values) != values:
            raise ScoreFileError(
                f"{path}: face {key[1]} of {row['path']} has two different rows (quality "
                f"{seen[key][0]} and {values[0]}); keep one row per face"
            )
        if seen[key] is not values:
            continue  # the same row again
        box = None if None in bbox else np.array(bbox, dtype=np.float64)
        faces.setdefault(key[0], []).append(ScoredFace(key[1], row["quality"], box))
    for scored_faces in faces.values():
        scored_faces.sort(key=lambda scored: scored.face)
    return faces


def photos_scored(scored: dict[str, list[ScoredFace]], photos: Iterable[Path]) -> int:
    """How many of `photos` have a row in `scored` (by resolved path, as the join goes)."""
    return sum(_path_key(photo) in scored for photo in photos)


def _path_key(path: str | Path) -> str:
    return str(Path(path).resolve())


def joined_qualities(
    scored: dict[str, list[ScoredFace]], evaluation_set: EvaluationSet
) -> np.ndarray:
    """The quality of each evaluated face in `scored`, -inf where it has none."""
    bboxes = evaluation_set.bboxes
    return np.array(
        [
            _matching_quality(
                scored.get(_path_key(sample.path), []), None if bboxes is None else bboxes[i]
            )
            for i, sample in enumerate(evaluation_set.samples)
        ]
    )


def _matching_quality(faces: list[ScoredFace], bbox: np.ndarray | None) -> float:
    if not faces:
        return -math.inf
    boxed = [face for face in faces if face.bbox is not None]
    if bbox is None or not boxed:  # crops on one side: one face per image
        return faces[0].quality
    overlaps = [iou(face.bbox, bbox) for face in boxed]
    best = int(np.argmax(overlaps))
    return boxed[best].quality if overlaps[best] >= _MIN_BOX_IOU else -math.inf
