"""The scoring pipeline: input -> decode -> detect -> align -> batched inference -> rows.

Rows come out per input and in input order; crops of consecutive inputs share inference
batches unless every input must be answered as soon as it arrives (stdin mode). With several
workers, decode, detect and align run in a thread pool a bounded number of inputs ahead of
inference, so the next batch is being prepared while the current one is scored (onnxruntime and
OpenCV release the GIL while they compute). With several sessions of the quality model, batches
are scored side by side, one per session: on many cores one session's batch, spread over all of
them, leaves most idle (issue 34: 16 cores scored barely faster than 2).
"""

from __future__ import annotations

import math
import queue
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from fiqa_cli.choices import DEFAULT_MAX_PIXELS, LARGEST_FACE
from fiqa_cli.model_contract import INPUT_SIZE
from fiqa_cli.runtime.calibration import Calibration
from fiqa_cli.runtime.compression import file_quality
from fiqa_cli.runtime.crop_files import CropSaveError, save_crop
from fiqa_cli.runtime.decode import DecodeError, decode_image, read_image_bytes
from fiqa_cli.runtime.detect import Detector, Face
from fiqa_cli.runtime.face_mesh import FaceMesh, Mesh, template_face
from fiqa_cli.runtime.faces import NO_FACE_MESSAGE, aligned_detected
from fiqa_cli.runtime.inputs import InputItem
from fiqa_cli.runtime.measure_kinds import Measure
from fiqa_cli.runtime.measures import measure_face
from fiqa_cli.runtime.quality_model import QualityModel
from fiqa_cli.runtime.rows import ERROR, NO_FACE, OK, QUALITY_DECIMALS, UNREADABLE, Row


@dataclass(frozen=True)
class _FaceCrop:
    """An aligned crop waiting for its score."""

    crop: np.ndarray
    face_index: int
    face: Face | None  # None when the input itself is the crop (--detector none)
    message: str = ""
    measures: dict[str, Measure] | None = None


_Slot = Row | _FaceCrop
_Prepared = tuple[str, list[_Slot]]  # an input's path and what it yielded


class Scorer:
    def __init__(
        self,
        model: QualityModel | Sequence[QualityModel],
        detector: Detector | None,
        *,
        faces: str = LARGEST_FACE,
        batch_size: int = 64,
        workers: int = 1,
        crops_dir: Path | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        measures: bool = False,
        face_mesh: FaceMesh | None = None,
        warn: Callable[[str], None] = lambda message: None,
    ):
        """`model`: the quality model, or several sessions of it that score batches side by
        side (the first one's calibration is used). `faces`: largest, central or all
        (`fiqa_cli.runtime.face_choice`).
        `workers` threads decode, detect and align; 1 does it all in the caller's thread.
        Detector sessions shared by several workers should have one intra-op thread each.
        `measures` adds each face's component measures (`fiqa_cli.runtime.measures`) to its row;
        those read from the face mesh need `face_mesh` (shared by the workers like the
        detector), else they are not assessed."""
        if workers < 1:
            raise ValueError(f"workers must be at least 1, not {workers}")
        self._sessions = [model] if isinstance(model, QualityModel) else list(model)
        if not self._sessions:
            raise ValueError("at least one quality model session is needed")
        self._model = self._sessions[0]
        self._detector = detector
        self._faces = faces
        self._batch_size = batch_size
        self._workers = workers
        self._crops_dir = crops_dir
        self._max_pixels = max_pixels
        self._measures = measures
        self._face_mesh = face_mesh
        self._warn = warn

    def score(self, items: Iterable[InputItem], *, answer_each: bool) -> Iterator[list[Row]]:
        """The rows of each input, in input order. `answer_each` scores every input before
        the next is read, for callers that wait for each answer (stdin)."""
        if answer_each or self._workers == 1:
            yield from self._score_prepared(map(self._prepare, items), answer_each)
            return
        pool = ThreadPoolExecutor(self._workers, thread_name_prefix="fiqa-prepare")
        try:
            yield from self._score_prepared(self._prepared_ahead(pool, items), answer_each=False)
        finally:
            pool.shutdown(cancel_futures=True)

    def score_images(self, images: Iterable[tuple[str, np.ndarray]]) -> Iterator[list[Row]]:
        """`score` for images decoded already (video frames), each with the name its rows
        carry as path. Prepared in the caller's thread: only crops wait for their batch, never
        the images themselves."""
        prepared = ((name, self._image_slots(name, image)) for name, image in images)
        yield from self._score_prepared(prepared, answer_each=False)

    def aligned_crops(self, image: np.ndarray) -> list[np.ndarray]:
        """The crops the model would score for `image` (to save a chosen frame's face)."""
        return [slot.crop for slot in self._face_slots("", image) if isinstance(slot, _FaceCrop)]

    def _prepared_ahead(
        self, pool: ThreadPoolExecutor, items: Iterable[InputItem]
    ) -> Iterator[_Prepared]:
        """`_prepare` of each item in input order, computed by the pool up to two inference
        batches ahead: enough work queued to keep the workers busy while a batch is scored,
        and a bound on the crops held in memory however many inputs there are."""
        ahead = 2 * self._batch_size + self._workers
        futures: deque[Future[_Prepared]] = deque()
        for item in items:
            futures.append(pool.submit(self._prepare, item))
            if len(futures) >= ahead:
                yield futures.popleft().result()
        while futures:
            yield futures.popleft().result()

    def _score_prepared(
        self, prepared: Iterable[_Prepared], answer_each: bool
    ) -> Iterator[list[Row]]:
        groups = self._groups(prepared, answer_each)
        if answer_each or len(self._sessions) == 1:
            for group in groups:
                yield from self._finish(group, self._model)
            return
        yield from self._finished_side_by_side(groups)

    def _groups(
        self, prepared: Iterable[_Prepared], answer_each: bool
    ) -> Iterator[list[_Prepared]]:
        """Consecutive inputs whose crops fill one inference batch (one input each when every
        input is answered at once)."""
        pending: list[_Prepared] = []
        waiting_crops = 0
        for path, slots in prepared:
            pending.append((path, slots))
            waiting_crops += sum(isinstance(slot, _FaceCrop) for slot in slots)
            # Inputs without a face add no crops; a long run of them is written out too.
            full = waiting_crops >= self._batch_size or len(pending) >= 4 * self._batch_size
            if answer_each or full:
                yield pending
                pending, waiting_crops = [], 0
        if pending:
            yield pending

    def _finished_side_by_side(self, groups: Iterable[list[_Prepared]]) -> Iterator[list[Row]]:
        """Each group scored by whichever session is free, rows still in input order; at most
        one group per session waits, which bounds the crops held."""
        free: queue.SimpleQueue[QualityModel] = queue.SimpleQueue()
        for session in self._sessions:
            free.put(session)

        def finish(group: list[_Prepared]) -> list[list[Row]]:
            session = free.get()
            try:
                return list(self._finish(group, session))
            finally:
                free.put(session)

        pool = ThreadPoolExecutor(len(self._sessions), thread_name_prefix="fiqa-infer")
        futures: deque[Future[list[list[Row]]]] = deque()
        try:
            for group in groups:
                futures.append(pool.submit(finish, group))
                if len(futures) > len(self._sessions):
                    yield from futures.popleft().result()
            while futures:
                yield from futures.popleft().result()
        finally:
            pool.shutdown(cancel_futures=True)

    def _prepare(self, item: InputItem) -> _Prepared:
        return item.path, self._slots(item)

    def _slots(self, item: InputItem) -> list[_Slot]:
        if item.problem is not None:
            return [Row(item.path, UNREADABLE, message=item.problem)]
        try:
            data = read_image_bytes(item.path)
            image = decode_image(data, self._max_pixels)
        except DecodeError as error:
            return [Row(item.path, UNREADABLE, message=str(error))]
        except Exception as error:  # one bad input must not end a run of thousands
            return [Row(item.path, ERROR, message=f"{type(error).__name__}: {error}")]
        # Only the file's bytes tell how it was compressed; video frames have no file.
        quality = file_quality(data) if self._measures else None
        return self._image_slots(item.path, image, quality=quality)

    def _image_slots(
        self, path: str, image: np.ndarray, *, quality: float | None = None
    ) -> list[_Slot]:
        try:
            slots = self._face_slots(path, image, quality=quality)
        except Exception as error:  # one bad input must not end a run of thousands
            return [Row(path, ERROR, message=f"{type(error).__name__}: {error}")]
        if self._crops_dir is not None:
            slots = [self._with_saved_crop(path, slot) for slot in slots]
        return slots

    def _face_slots(
        self, path: str, image: np.ndarray, *, quality: float | None = None
    ) -> list[_Slot]:
        if self._detector is None:
            slot = self._given_crop(path, image)
            if self._measures:
                mesh = self._mesh(slot.crop, template_face(slot.crop.shape[1]))
                measures = measure_face(
                    slot.crop, None, [], slot.crop, mesh=mesh, file_quality=quality
                )
                slot = replace(slot, measures=measures)
            return [slot]
        detected = self._detector.detect(image)
        found = aligned_detected(image, detected, self._faces)
        if not found:
            return [Row(path, NO_FACE, message=NO_FACE_MESSAGE)]
        slots: list[_Slot] = []
        for each in found:
            measures = None
            if self._measures:
                mesh = self._mesh(image, each.face) if each.crop is not None else None
                measures = measure_face(
                    image, each.face, detected, each.crop, mesh=mesh, file_quality=quality
                )
            if each.crop is not None:
                slots.append(_FaceCrop(each.crop, each.index, each.face, measures=measures))
            else:
                slots.append(
                    Row(
                        path,
                        NO_FACE,
                        face=each.index,
                        det_score=each.face.score,
                        bbox=each.face.bbox,
                        landmarks=_points(each.face),
                        message=each.problem,
                        measures=measures,
                    )
                )
        return slots

    def _mesh(self, image: np.ndarray, face: Face) -> Mesh | None:
        """The face's mesh, None without a mesh model or when it fails on this face: its
        measures are then not assessed, and the face's other columns still written."""
        if self._face_mesh is None:
            return None
        try:
            return self._face_mesh.mesh(image, face)
        except Exception:  # one odd face must not lose the input's rows
            return None

    def _given_crop(self, path: str, image: np.ndarray) -> _FaceCrop:
        """--detector none: the image is taken as an aligned crop, resized if need be."""
        height, width = image.shape[:2]
        if (height, width) == (INPUT_SIZE, INPUT_SIZE):
            return _FaceCrop(image, 0, None)
        message = f"{width}x{height} is not an aligned {INPUT_SIZE}x{INPUT_SIZE} crop; resized"
        self._warn(f"{path}: {message}")
        resized = cv2.resize(image, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_AREA)
        return _FaceCrop(resized, 0, None, message)

    def _with_saved_crop(self, path: str, slot: _Slot) -> _Slot:
        """The slot, its crop written to --save-crops; a crop that cannot be written is a
        warning on the input's row, not the end of the run."""
        if not isinstance(slot, _FaceCrop):
            return slot
        try:
            save_crop(self._crops_dir, path, slot.face_index, slot.crop)
        except CropSaveError as error:
            self._warn(f"{path}: {error}")
            return replace(slot, message="; ".join(filter(None, (slot.message, str(error)))))
        return slot

    def _finish(self, pending: list[_Prepared], session: QualityModel) -> Iterator[list[Row]]:
        crops = [slot.crop for _, slots in pending for slot in slots if isinstance(slot, _FaceCrop)]
        scores = iter(session.predict_batched(crops, self._batch_size).tolist())
        for path, slots in pending:
            yield [
                slot
                if isinstance(slot, Row)
                else _scored_row(path, slot, next(scores), self._model.calibration)
                for slot in slots
            ]


def _scored_row(path: str, slot: _FaceCrop, quality: float, calibration: Calibration | None) -> Row:
    face = slot.face
    # NaN would pass every --fail-under comparison and is not JSON: the model failed here.
    finite = math.isfinite(quality)
    # Calibrated from the quality as written, so that a row read back maps to the same score.
    quality_100 = (
        calibration.score(round(quality, QUALITY_DECIMALS)) if calibration and finite else None
    )
    return Row(
        path,
        OK if finite else ERROR,
        face=slot.face_index,
        quality=quality if finite else None,
        det_score=None if face is None else face.score,
        bbox=None if face is None else face.bbox,
        landmarks=None if face is None else _points(face),
        message=slot.message if finite else f"the model returned a non-finite quality ({quality})",
        measures=slot.measures,
        quality_100=quality_100,
    )


def _points(face: Face) -> tuple[float, ...]:
    """The face's five landmarks as the row holds them: x, y of each in turn."""
    return tuple(face.landmarks.reshape(-1).tolist())
