"""Expand `fiqa score` INPUT arguments into the ordered stream of inputs to score."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from fiqa_cli.runtime.image_files import IMAGE_SUFFIXES, is_image_file

STDIN = "-"


@dataclass(frozen=True)
class InputItem:
    path: str
    # Set when the argument itself is unusable (a directory without images): the input
    # gets a failure row carrying this reason instead of being decoded.
    problem: str | None = None


def expand_inputs(arguments: Iterable[str], stdin: TextIO) -> Iterator[InputItem]:
    """Files as given, directories as their images (recursive, sorted), `-` as stdin lines.

    stdin is read one line at a time so that each path is answered as soon as it arrives.
    """
    for argument in arguments:
        if argument == STDIN:
            yield from _stdin_items(stdin)
        elif Path(argument).is_dir():
            yield from _directory_items(Path(argument))
        else:
            yield InputItem(argument)


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


def _stdin_items(stdin: TextIO) -> Iterator[InputItem]:
    for line in iter(stdin.readline, ""):
        path = line.rstrip("\r\n")
        if path.strip():
            yield InputItem(path)


def _directory_items(directory: Path) -> Iterator[InputItem]:
    images = sorted(_walk_images(directory), key=lambda path: path.relative_to(directory).parts)
    if not images:
        suffixes = " ".join(sorted(IMAGE_SUFFIXES))
        yield InputItem(str(directory), problem=f"directory has no image files ({suffixes})")
    for path in images:
        yield InputItem(str(path))


def _walk_images(directory: Path) -> Iterator[Path]:
    """Images below `directory`, following symlinked folders (datasets are often assembled
    from links) but entering each real folder once, so a link cycle cannot loop."""
    seen: set[str] = set()
    for folder, subfolders, files in os.walk(directory, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            subfolders.clear()
            continue
        seen.add(real)
        yield from (path for path in map(Path(folder).joinpath, files) if is_image_file(path))
