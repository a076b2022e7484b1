"""Frames of bursts and videos for `fiqa best`: which inputs form a group, and the sampled
frames of each group, decoded one at a time.

Videos are read with OpenCV's VideoCapture, grabbing every frame and retrieving (converting)
only the sampled ones: seeking lands on keyframes and frame counts are container estimates, so
the only exact index and timestamp of a frame is the one reached by reading up to it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np

from fiqa_cli.choices import DEFAULT_MAX_PIXELS, GROUP_BY_NONE, GROUP_BY_VIDEO
from fiqa_cli.runtime.decode import DecodeError, read_image
from fiqa_cli.runtime.image_files import IMAGE_SUFFIXES
from fiqa_cli.runtime.inputs import stdin_items, walk_files

VIDEO_SUFFIXES = frozenset(
    {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".mjpeg"}
)
ALL_INPUTS_GROUP = "all"


@dataclass(frozen=True)
class Sampling:
    """Which frames are scored: every `stride`-th, or about `fps` per second of video, between
    `start_s` and `end_s` seconds. Image files have no time: they follow `stride` only."""

    stride: int = 1
    fps: float | None = None
    start_s: float = 0.0
    end_s: float | None = None

    @property
    def uses_time(self) -> bool:
        return self.fps is not None or self.start_s > 0 or self.end_s is not None


@dataclass(frozen=True)
class FrameRef:
    """Where a frame comes from: an image file (`index` its place among the group's images) or
    a video (`index` its frame number from 0, `timestamp_ms` its presentation time)."""

    source: str
    index: int
    timestamp_ms: float | None = None


@dataclass(frozen=True)
class Frame:
    ref: FrameRef
    image: np.ndarray | None  # None when it could not be decoded: `problem` says why
    problem: str | None = None


@dataclass(frozen=True)
class FrameGroup:
    """Frames among which one best shot is chosen: image files and videos, in order."""

    name: str
    sources: tuple[str, ...]
    problem: str | None = None  # set when the input holds no frames at all


def is_video_file(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES and _is_file(path)


def _is_file(path: Path) -> bool | None:
    """Whether `path` is a regular file; None when the OS cannot tell (a path over its
    length limit): reading it says why, in its row."""
    try:
        return path.is_file()
    except OSError:
        return None


def groups_from_arguments(arguments: Sequence[str], group_by: str) -> list[FrameGroup]:
    """Groups of the INPUT arguments. folder: the images and videos of each folder together;
    video: each video alone, images by folder; none: everything one group. Folders are
    searched recursively; a folder without images or videos becomes a group with a problem."""
    keyed: dict[str, list[str]] = {}
    empty: list[FrameGroup] = []
    for argument in arguments:
        files, unlisted = _frame_files(Path(argument))
        if not files and not unlisted:
            empty.append(FrameGroup(argument, (), _no_frames_problem(Path(argument))))
        for path in files:
            keyed.setdefault(_group_key(path, group_by), []).append(str(path))
        empty += unlisted
    groups = [FrameGroup(name, tuple(sources)) for name, sources in keyed.items()]
    return groups + empty


def groups_from_lines(stdin: BinaryIO) -> Iterator[FrameGroup]:
    """One group per line (a folder, a video or an image), read as each line arrives and
    as `fiqa score -` reads them (a line too long to be a path is a group with that problem)."""
    for item in stdin_items(stdin):
        argument = item.path
        if item.problem is not None:
            yield FrameGroup(argument, (), item.problem)
        else:
            files, unlisted = _frame_files(Path(argument))
            problem = None if files or unlisted else _no_frames_problem(Path(argument))
            if files or not unlisted:
                yield FrameGroup(argument, tuple(map(str, files)), problem)
            yield from unlisted


def group_frames(group: FrameGroup, sampling: Sampling) -> Iterator[Frame]:
    """The sampled frames of `group`, decoded one at a time, in source order."""
    images = [source for source in group.sources if not is_video_file(Path(source))]
    image_positions = {source: position for position, source in enumerate(images)}
    for source in group.sources:
        if source in image_positions:
            position = image_positions[source]
            if position % sampling.stride == 0:
                yield _image_frame(FrameRef(source, position))
        else:
            yield from video_frames(source, sampling)


def video_frames(path: str, sampling: Sampling) -> Iterator[Frame]:
    """The sampled frames of a video, upright per its rotation metadata. A video that cannot
    be opened, or that fails part way, ends with one frame carrying the problem."""
    try:
        capture = _open_video(path)
    except DecodeError as error:
        yield Frame(FrameRef(path, 0), None, str(error))
        return
    start_ms = sampling.start_s * 1000.0
    next_due_ms = start_ms
    index = -1
    in_range = 0  # frames at or after --start, which --stride counts
    try:
        while capture.grab():
            index += 1
            timestamp_ms = capture.get(cv2.CAP_PROP_POS_MSEC)
            if sampling.end_s is not None and timestamp_ms >= sampling.end_s * 1000.0:
                break
            if timestamp_ms < start_ms:
                continue
            in_range += 1
            if sampling.fps is None:
                if (in_range - 1) % sampling.stride:
                    continue
            elif timestamp_ms < next_due_ms:
                continue
            else:
                # Due times lie on a fixed grid from --start, so one frame's jitter does not
                # shift every later sample; the next one is computed, not stepped to (a step
                # of 1000/fps ms would take billions of steps at --fps 1e9).
                period_ms = 1000.0 / sampling.fps
                next_due_ms = (
                    start_ms + (math.floor((timestamp_ms - start_ms) / period_ms) + 1) * period_ms
                )
            ok, image = capture.retrieve()
            ref = FrameRef(path, index, timestamp_ms)
            if ok and image is not None:
                yield Frame(ref, image)
            else:
                yield Frame(ref, None, "frame could not be decoded")
    finally:
        capture.release()
    if index < 0:
        yield Frame(FrameRef(path, 0), None, "video has no decodable frames")


def read_frame(ref: FrameRef) -> np.ndarray:
    """The full image of one frame again (to save it): a DecodeError when it cannot be read."""
    if not is_video_file(Path(ref.source)):
        return read_image(ref.source)
    capture = _open_video(ref.source)
    try:
        for _ in range(ref.index + 1):
            if not capture.grab():
                raise DecodeError(f"video ended before frame {ref.index}")
        ok, image = capture.retrieve()
    finally:
        capture.release()
    if not ok or image is None:
        raise DecodeError(f"frame {ref.index} could not be decoded")
    return image


def _open_video(path: str) -> cv2.VideoCapture:
    """The opened video; DecodeError when it cannot be opened, or when its frames are over
    the pixel budget that decoding an image has (a 2.6 MB MJPEG of 12000x12000 frames)."""
    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        raise DecodeError("cannot open as a video (corrupt or unsupported)")
    width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
    height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    if width * height > DEFAULT_MAX_PIXELS:
        capture.release()
        raise DecodeError(
            f"video frames are {width}x{height} ({width * height / 1e6:.1f} megapixels), over "
            f"the pixel budget of {DEFAULT_MAX_PIXELS}"
        )
    # Phones store portrait video as landscape frames plus a rotation; apply it.
    capture.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
    return capture


def _image_frame(ref: FrameRef) -> Frame:
    try:
        return Frame(ref, read_image(ref.source))
    except DecodeError as error:
        return Frame(ref, None, str(error))


def _frame_files(path: Path) -> tuple[list[Path], list[FrameGroup]]:
    """The regular image and video files of an argument: itself, or those below a folder
    (walked as `fiqa score` walks folders), in path order; and a group with its problem for
    each folder that cannot be listed (a path over the OS's length limit, say)."""
    try:
        is_folder = path.is_dir()
    except OSError:  # a path the OS refuses: reading it says why, in its row
        is_folder = False
    if not is_folder:
        return ([path] if _is_file(path) is not False else []), []
    unlisted: list[OSError] = []
    found = walk_files(path, IMAGE_SUFFIXES | VIDEO_SUFFIXES, unlisted.append)
    files = sorted(
        (file for file in found if _is_file(file) is not False),
        key=lambda file: file.relative_to(path).parts,
    )
    problems = [
        FrameGroup(error.filename, (), f"cannot list folder: {error.strerror}")
        for error in unlisted
    ]
    return files, problems


def _group_key(path: Path, group_by: str) -> str:
    if group_by == GROUP_BY_NONE:
        return ALL_INPUTS_GROUP
    if group_by == GROUP_BY_VIDEO and is_video_file(path):
        return str(path)
    return str(path.parent)


def _no_frames_problem(path: Path) -> str:
    if not path.exists():
        return "not found"
    suffixes = " ".join(sorted(IMAGE_SUFFIXES | VIDEO_SUFFIXES))
    return f"no image or video files ({suffixes})"
