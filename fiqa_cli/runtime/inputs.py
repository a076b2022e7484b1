"""Expand `fiqa score` INPUT arguments into the ordered stream of inputs to score."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import sys
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from fiqa_cli.errors import FiqaError
from fiqa_cli.runtime.image_files import IMAGE_SUFFIXES

STDIN = "-"
# Far above any path the OS accepts (PATH_MAX is 4096): a longer stdin line is no path, and
# reading it whole would let one endless line (`fiqa score - < /dev/zero`) take all memory.
MAX_STDIN_LINE_BYTES = 64 * 1024
# How much of such a line its row shows as its path.
_SHOWN_LINE_CHARS = 200


@dataclass(frozen=True)
class InputItem:
    path: str
    # Set when the argument itself is unusable (a directory without images): the input
    # gets a failure row carrying this reason instead of being decoded.
    problem: str | None = None


def expand_inputs(arguments: Iterable[str], stdin: BinaryIO) -> Iterator[InputItem]:
    """Files as given, directories as their images (recursive, sorted), `-` as stdin lines.

    stdin is read as bytes, one line at a time, so that each path is answered as soon as it
    arrives and names that are not UTF-8 keep their bytes (surrogateescape, as in the folder
    walk). Whatever an argument is, it becomes items: a path that cannot even be looked at
    (too long, in an unreadable folder) is an item whose row says why.
    """
    for argument in arguments:
        if argument == STDIN:
            yield from stdin_items(stdin)
        elif _is_directory(argument):
            yield from _directory_items(Path(argument))
        else:
            yield InputItem(argument)


def stdin_bytes(arguments: Iterable[str]) -> BinaryIO:
    """The process's stdin as bytes; a FiqaError when `-` asks for it and it is closed
    (`fiqa score - <&-`), before anything is scored."""
    if sys.stdin is not None:
        return sys.stdin.buffer
    if STDIN in arguments:
        raise FiqaError("'-' reads input paths from stdin, but stdin is closed")
    return io.BytesIO()


def parse_shard(text: str) -> tuple[int, int]:
    """`K/N` (1 <= K <= N) -> (K, N); ValueError with the reason otherwise."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise ValueError(f"expected K/N such as 1/4, got {text!r}") from None
    if not 1 <= index <= count:
        raise ValueError(f"K must be between 1 and N in K/N, got {text!r}")
    return index, count


def in_shard(path: str, index: int, count: int) -> bool:
    """Whether `path` belongs to shard `index` of `count` (1-based).

    Decided by a hash of the path alone, so the partition does not depend on the order or the
    number of inputs: N jobs given the same inputs cover each one exactly once.
    """
    digest = hashlib.sha256(path.encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "big") % count == index - 1


def _is_directory(argument: str) -> bool:
    try:
        return stat.S_ISDIR(os.stat(argument).st_mode)
    except (OSError, ValueError):  # reading it will say what is wrong, in its row
        return False


def stdin_items(stdin: BinaryIO) -> Iterator[InputItem]:
    """One input per non-blank stdin line, read as it arrives (bytes that are not UTF-8 kept
    as surrogateescape); a line over MAX_STDIN_LINE_BYTES is skipped unread, an item with
    its problem."""
    while line := stdin.readline(MAX_STDIN_LINE_BYTES + 1):
        if len(line) > MAX_STDIN_LINE_BYTES and not line.endswith(b"\n"):
            _skip_rest_of_line(stdin)
            shown = line[:_SHOWN_LINE_CHARS].decode("utf-8", "surrogateescape")
            problem = f"stdin line longer than {MAX_STDIN_LINE_BYTES} bytes: not a path"
            yield InputItem(f"{shown}...", problem=problem)
            continue
        path = line.rstrip(b"\r\n").decode("utf-8", "surrogateescape")
        if path.strip():
            yield InputItem(path)


def _skip_rest_of_line(stdin: BinaryIO) -> None:
    while (chunk := stdin.readline(MAX_STDIN_LINE_BYTES)) and not chunk.endswith(b"\n"):
        pass


def _directory_items(directory: Path) -> Iterator[InputItem]:
    unlisted: list[OSError] = []
    items = [
        InputItem(str(path)) for path in walk_files(directory, IMAGE_SUFFIXES, unlisted.append)
    ]
    items += [
        InputItem(error.filename, problem=f"cannot list folder: {error.strerror}")
        for error in unlisted
    ]
    if not items:
        suffixes = " ".join(sorted(IMAGE_SUFFIXES))
        yield InputItem(str(directory), problem=f"directory has no image files ({suffixes})")
    yield from sorted(items, key=lambda item: Path(item.path).relative_to(directory).parts)


def walk_files(
    directory: Path, suffixes: Collection[str], on_error: Callable[[OSError], None]
) -> Iterator[Path]:
    """Entries with one of `suffixes` (lower case) below `directory`, following symlinked
    folders (datasets are often assembled from links) but entering each real folder once, so
    a link cycle cannot loop. Entries that are no regular file (a FIFO, a device, a broken
    link) are kept: reading them gives their row. Folders that cannot be listed go to
    `on_error`."""
    seen: set[str] = set()
    for folder, subfolders, files in os.walk(directory, followlinks=True, onerror=on_error):
        real = os.path.realpath(folder)
        if real in seen:
            subfolders.clear()
            continue
        seen.add(real)
        yield from (
            path for path in map(Path(folder).joinpath, files) if path.suffix.lower() in suffixes
        )
