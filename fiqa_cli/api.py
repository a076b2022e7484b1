"""fiqa from Python: the rows `fiqa score` writes, without a process or a file.

    from fiqa import Scorer

    scorer = Scorer()                            # the embedded model, detector `auto`, CPU or CUDA
    for row in scorer.score("photo.jpg"):        # one row per face, or one saying why there is none
        print(row.path, row.face, row.quality, row.status)
    rows = scorer.score(["a.jpg", "photos/"])    # files and folders, rows in input order
    rows = scorer.score(image_bgr)               # a decoded BGR uint8 array (OpenCV's layout)

A `Scorer` opens its model and detector sessions once and reuses them for every call. It runs
the same pipeline as `fiqa score` (`fiqa_cli.runtime.pipeline.Scorer`), so a row here equals the
row the command writes for the same input and options, values rounded alike. Notices (a CPU
fallback, the detector `auto` chose, a crop that had to be resized) go to the `fiqa` logger, and
failures of one input are rows (`status` unreadable, no_face or error), never exceptions; a model
or detector that cannot be loaded raises `fiqa.FiqaError` when the Scorer is made.

Threads: one Scorer may be shared between threads. Its sessions are the ones `fiqa score
--workers N` shares between its worker threads, and each call keeps its own state; calls from
several threads run side by side on the same sessions.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fiqa_cli.choices import AUTO_DETECTOR, DEFAULT_MAX_PIXELS, LARGEST_FACE
from fiqa_cli.errors import FiqaError
from fiqa_cli.runtime.build import build_scoring
from fiqa_cli.runtime.inputs import STDIN, InputItem, expand_inputs
from fiqa_cli.runtime.named_models import model_file
from fiqa_cli.runtime.pipeline import Scorer as Pipeline
from fiqa_cli.runtime.profiles import Profile, check_calibration, judged, load_profile
from fiqa_cli.runtime.rows import COLUMNS, VERDICT_COLUMNS, Row, row_columns

__all__ = ["FaceScore", "FiqaError", "Scorer"]

logger = logging.getLogger("fiqa")

Source = str | os.PathLike[str] | np.ndarray
# The path a decoded array's rows carry, as `fiqa best` names its frames.
ARRAY_PATH = "<array>"


@dataclass(frozen=True)
class FaceScore:
    """One row of `fiqa score`: a scored face, or an input without one (`status` says which).

    The fields are the CSV's columns; `measures` holds the `--measures` columns (quality_100,
    then each measure's value and its 0-100 score) and the `--landmarks` ones when the Scorer
    was asked for them, and `verdict`/`reasons` the judgement when it was given a profile."""

    path: str
    face: int | None
    quality: float | None
    status: str
    det_score: float | None
    x1: float | None
    y1: float | None
    x2: float | None
    y2: float | None
    message: str
    measures: Mapping[str, object] = field(default_factory=dict)
    verdict: str | None = None
    reasons: str = ""
    # The columns `fiqa score` writes with the Scorer's options, for as_dict.
    columns: tuple[str, ...] = field(default=COLUMNS, repr=False)

    def as_dict(self) -> dict[str, object]:
        """Column -> value, the columns and their order those of the CSV and JSONL rows `fiqa
        score` writes with the same options (None for an empty cell)."""
        values = {column: getattr(self, column, None) for column in COLUMNS + VERDICT_COLUMNS}
        values.update(self.measures)
        return {column: values[column] for column in self.columns}


class Scorer:
    """Scores faces in photos with one model and one detector, opened once."""

    def __init__(
        self,
        model: str | os.PathLike[str] = "default",
        *,
        detector: str = AUTO_DETECTOR,
        detector_model: str | os.PathLike[str] | None = None,
        device: str = "auto",
        faces: str = LARGEST_FACE,
        measures: bool = False,
        landmarks: bool = False,
        profile: str | None = None,
        batch_size: int | None = None,
        workers: int = 1,
        inference_sessions: int | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        cuda_options: Mapping[str, str] | None = None,
    ) -> None:
        """`model`: a shipped model's name (`default`, `v11`, `v5`) or an ONNX file from `fiqa
        export`. `detector`: auto, scrfd, mtcnn, yunet, or none (inputs are aligned 112x112
        crops). `device`: auto, cpu or cuda. `faces`: largest, central or all, as `fiqa score
        --faces`. `measures` adds the component measures, `profile` (icao, capture, or a TOML
        file) a verdict and its reasons, as `--measures` and `--profile` do. `workers` threads
        decode, detect and align ahead of inference within one call of several inputs, and
        `inference_sessions` sessions of the model score their batches side by side (None:
        two on a CPU of two or more cores with two or more `workers`, else one)."""
        self._profile: Profile | None = load_profile(profile) if profile else None
        scoring = build_scoring(
            model=model_file(model),
            detector=detector,
            detector_model=Path(detector_model) if detector_model is not None else None,
            device=device,
            batch_size=batch_size,
            workers=workers,
            cuda_options=dict(cuda_options or {}),
            notice=logger.info,
            inference_sessions=inference_sessions,
            measures=measures or self._profile is not None,
        )
        if self._profile is not None:
            check_calibration(self._profile, scoring.model.calibration, scoring.model.path)
        self.model_path = scoring.model.path
        self._pipeline = Pipeline(
            scoring.sessions,
            scoring.detector,
            faces=faces,
            batch_size=scoring.batch_size,
            workers=workers,
            max_pixels=max_pixels,
            measures=measures or self._profile is not None,
            face_mesh=scoring.face_mesh,
            warn=logger.warning,
        )
        self._columns = row_columns(
            measures=measures, landmarks=landmarks, judged=self._profile is not None
        )

    def score(self, source: Source | Iterable[Source]) -> list[FaceScore]:
        """The rows of a photo file, a folder (its images, searched recursively, sorted), a
        decoded BGR array, or a list of these, in input order."""
        return [row for rows in self.iter_scores(source) for row in rows]

    def iter_scores(self, source: Source | Iterable[Source]) -> Iterator[list[FaceScore]]:
        """`score`, one input at a time: each input's rows as soon as they are scored, so a
        long list is never held in memory whole."""
        sources = [source] if _is_one_source(source) else source
        for item in sources:
            if isinstance(item, np.ndarray):
                rows = next(self._pipeline.score_images([(ARRAY_PATH, _checked_array(item))]))
                yield [self._face_score(row) for row in rows]
            else:
                path = os.fsdecode(item)
                # The API reads no stdin: '-' is a file of that name here.
                items = [InputItem(path)] if path == STDIN else expand_inputs([path], io.BytesIO())
                for rows in self._pipeline.score(items, answer_each=False):
                    yield [self._face_score(row) for row in rows]

    def _face_score(self, row: Row) -> FaceScore:
        if self._profile is not None:
            row = judged(row, self._profile)
        values = row.values(self._columns)
        base = {column: values.pop(column) for column in COLUMNS}
        verdict = values.pop("verdict", None)
        reasons = values.pop("reasons", "") or ""
        return FaceScore(
            **base, measures=values, verdict=verdict, reasons=reasons, columns=self._columns
        )


def _is_one_source(source: object) -> bool:
    return isinstance(source, str | os.PathLike | np.ndarray)


def _checked_array(image: np.ndarray) -> np.ndarray:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise FiqaError(
            f"expected a decoded BGR image (height x width x 3, uint8), not an array of shape "
            f"{image.shape} and dtype {image.dtype}"
        )
    return image
