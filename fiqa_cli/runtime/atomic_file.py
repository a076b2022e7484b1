"""Replacing a file whole: written beside it under a temporary name, then renamed over it, so
that a failed or interrupted write never leaves half a file where a reader looks."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def write_atomically(
    path: Path, data: bytes, check: Callable[[Path], object] | None = None
) -> None:
    """`data` into `path`, replacing it only once written whole (and accepted by `check`,
    called with the temporary file's path, when given). Raises OSError on a failure, with
    `path` as it was."""
    handle, temporary = tempfile.mkstemp(
        dir=path.resolve().parent, prefix=f".{path.name}.", suffix=".part"
    )
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        if check is not None:
            check(Path(temporary))
        os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)
