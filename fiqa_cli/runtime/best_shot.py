"""Best shot of a group of frames: gate each frame, rank the acceptable ones by quality, keep
the top K at least a minimum time apart.

The gate is a function from a frame's rows (one per detected face, as `Scorer` writes them
with faces=all) to the reasons the frame is not acceptable, so that other gates (a verdict
profile) can take the place of `face_gate`.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from fiqa_cli.errors import FiqaError
from fiqa_cli.runtime import profiles
from fiqa_cli.runtime.crop_files import write_png
from fiqa_cli.runtime.frames import (
    FrameGroup,
    FrameRef,
    Sampling,
    group_frames,
    is_video_file,
    read_frame,
)
from fiqa_cli.runtime.input_file import read_input_bytes
from fiqa_cli.runtime.pipeline import Scorer
from fiqa_cli.runtime.profiles import Profile
from fiqa_cli.runtime.rows import COLUMNS, FAIL, OK, UNREADABLE, Row
from fiqa_cli.runtime.safe_write import write_replacing

NO_ACCEPTABLE_FRAME = "no_acceptable_frame"
BEST_COLUMNS = ("group", "rank", "frame", "timestamp_ms", *COLUMNS)
TIMESTAMP_DECIMALS = 1

Gate = Callable[[Sequence[Row]], tuple[str, ...]]


def face_gate(min_quality: float | None = None, profile: Profile | None = None) -> Gate:
    """Acceptable: exactly one face, scored (so not cut off by the border), with quality at
    least `min_quality` when given, and meeting `profile` when given (the frames' rows must
    then carry their measures)."""

    def reasons(rows: Sequence[Row]) -> tuple[str, ...]:
        faces = [row for row in rows if row.face is not None]
        if len(faces) > 1:
            return (f"{len(faces)} faces detected; exactly one is needed",)
        (row,) = rows
        if row.status != OK:
            return (row.message or row.status,)
        if min_quality is not None and row.quality < min_quality:
            return (f"quality {row.quality:.4f} is below --min-quality {min_quality:g}",)
        if profile is not None:
            verdict = profiles.judged(row, profile)
            if verdict.verdict == FAIL:
                return tuple(verdict.reasons.split("; "))
        return ()

    return reasons


@dataclass(frozen=True)
class JudgedFrame:
    ref: FrameRef
    row: Row  # the frame's face (its best-scored one when the gate saw several)
    reasons: tuple[str, ...]  # empty: the frame is acceptable

    @property
    def rank_key(self) -> tuple[bool, float, bool, int]:
        """Higher quality first, then the earlier frame; unscored frames last, those with a
        face found (cut off, several) before those without."""
        quality = self.row.quality
        unscored = quality is None
        return unscored, 0.0 if unscored else -quality, self.row.face is None, self.ref.index


@dataclass(frozen=True)
class GroupResult:
    group: FrameGroup
    kept: list[JudgedFrame]  # best first
    best_rejected: JudgedFrame | None  # when nothing was kept: the best of the rejected frames
    frames: int  # frames judged

    def records(self) -> list[dict[str, object]]:
        """The rows `fiqa best` writes for the group (BEST_COLUMNS)."""
        if self.kept:
            return [
                _record(self.group.name, rank, judged.ref, judged.row)
                for rank, judged in enumerate(self.kept, start=1)
            ]
        if self.best_rejected is None:
            message = self.group.problem or "no frames sampled"
            row = Row(self.group.name, NO_ACCEPTABLE_FRAME, message=message)
            return [_record(self.group.name, None, None, row)]
        judged = self.best_rejected
        row = Row(
            judged.row.path,
            NO_ACCEPTABLE_FRAME,
            face=judged.row.face,
            quality=judged.row.quality,
            det_score=judged.row.det_score,
            bbox=judged.row.bbox,
            message="; ".join(judged.reasons),
        )
        return [_record(self.group.name, None, judged.ref, row)]


def best_of_group(
    scorer: Scorer,
    group: FrameGroup,
    sampling: Sampling,
    gate: Gate,
    top: int = 1,
    min_gap_ms: float = 0.0,
) -> GroupResult:
    """Score the sampled frames of `group` (batched across its frames) and keep its best."""
    acceptable: list[JudgedFrame] = []
    best_rejected: JudgedFrame | None = None
    frames = 0
    for judged in judge_frames(scorer, group, sampling, gate):
        frames += 1
        if not judged.reasons:
            acceptable.append(judged)
        elif best_rejected is None or judged.rank_key < best_rejected.rank_key:
            best_rejected = judged
    kept = top_apart(acceptable, top, min_gap_ms)
    return GroupResult(group, kept, None if kept else best_rejected, frames)


def judge_frames(
    scorer: Scorer, group: FrameGroup, sampling: Sampling, gate: Gate
) -> Iterator[JudgedFrame]:
    """Each sampled frame of `group` with the gate's reasons, in the order scored. Frames
    that cannot be decoded are judged at once; the others as their batch is scored."""
    waiting: deque[FrameRef] = deque()
    undecodable: list[JudgedFrame] = []

    def decoded_images() -> Iterator[tuple[str, np.ndarray]]:
        for frame in group_frames(group, sampling):
            if frame.image is None:
                row = Row(frame.ref.source, UNREADABLE, message=frame.problem or "")
                undecodable.append(JudgedFrame(frame.ref, row, (row.message,)))
                continue
            waiting.append(frame.ref)
            yield frame.ref.source, frame.image

    for rows in scorer.score_images(decoded_images()):
        ref = waiting.popleft()
        yield JudgedFrame(ref, _face_row(rows), gate(rows))
        yield from _drain(undecodable)
    yield from _drain(undecodable)


def top_apart(frames: Iterable[JudgedFrame], top: int, min_gap_ms: float) -> list[JudgedFrame]:
    """The best `top` frames, each at least `min_gap_ms` from every better one kept. Frames
    without a timestamp (image files), or from another source, are always far enough apart."""
    kept: list[JudgedFrame] = []
    for candidate in sorted(frames, key=lambda judged: judged.rank_key):
        if len(kept) == top:
            break
        if all(not _too_close(candidate.ref, other.ref, min_gap_ms) for other in kept):
            kept.append(candidate)
    return kept


def save_kept(result: GroupResult, scorer: Scorer, folder: Path) -> tuple[GroupResult, list[str]]:
    """Write each kept frame (an image file copied as it is, a video frame as PNG) and its
    aligned crop (PNG) to `folder`, never through a link planted there. The result with the
    row of each frame that could not be saved saying why, and those reasons."""
    kept, problems = [], []
    stem = _group_stem(result.group.name)
    for rank, judged in enumerate(result.kept, start=1):
        try:
            _save_frame(judged.ref, scorer, folder / f"{stem}_rank{rank}_frame{judged.ref.index}")
        except (FiqaError, cv2.error) as error:
            problem = f"frame not saved: {error}"
            problems.append(problem)
            message = "; ".join(filter(None, (judged.row.message, problem)))
            judged = replace(judged, row=replace(judged.row, message=message))
        kept.append(judged)
    return replace(result, kept=kept), problems


def _save_frame(ref: FrameRef, scorer: Scorer, base: Path) -> None:
    image = read_frame(ref)
    if is_video_file(Path(ref.source)):
        write_png(base.with_suffix(".png"), image)
    else:
        copy = base.with_suffix(Path(ref.source).suffix.lower())
        write_replacing(copy, read_input_bytes(ref.source))
    crops = scorer.aligned_crops(image)
    if crops:
        write_png(base.with_name(f"{base.name}_face.png"), crops[0])


def _face_row(rows: Sequence[Row]) -> Row:
    scored = [row for row in rows if row.status == OK]
    return max(scored, key=lambda row: row.quality) if scored else rows[0]


def _drain(judged: list[JudgedFrame]) -> Iterator[JudgedFrame]:
    while judged:
        yield judged.pop(0)


def _too_close(a: FrameRef, b: FrameRef, min_gap_ms: float) -> bool:
    if a.source != b.source or a.timestamp_ms is None or b.timestamp_ms is None:
        return False
    return abs(a.timestamp_ms - b.timestamp_ms) < min_gap_ms


def _record(group: str, rank: int | None, ref: FrameRef | None, row: Row) -> dict[str, object]:
    timestamp = None if ref is None else ref.timestamp_ms
    return {
        "group": group,
        "rank": rank,
        "frame": None if ref is None else ref.index,
        "timestamp_ms": None if timestamp is None else round(timestamp, TIMESTAMP_DECIMALS),
        **row.values(),
    }


def _group_stem(name: str) -> str:
    """A file-name stem for a group: its last path part, and a hash of the whole name so that
    groups with the same last part (two `burst/` folders) do not overwrite each other."""
    digest = hashlib.sha1(name.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    return f"{Path(name).stem or 'group'}_{digest}"
