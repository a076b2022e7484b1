"""Write a file that fiqa names (an `--out`, a crop, a saved frame) without following a link
planted where it goes.

Output names are predictable (`crops/NAME_HASH_face0.png`, `OUT.partial`), so whoever can write
to the folder can plant a symbolic link there first, and a plain `open(path, "w")` would
overwrite the file the link points to. Every such file is written in a private folder made
beside the target (mode 0700, created exclusively: nothing can be planted in it) and renamed
over the target, and a target that is a link, a FIFO or a device is refused: a rename would
replace it with a regular file, and opening it would follow it or block.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from fiqa_cli.errors import FiqaError

# The mode open() would give a new file: read once, as os.umask can only be read by setting it.
_UMASK = os.umask(0o022)
os.umask(_UMASK)
_NEW_FILE_MODE = 0o666 & ~_UMASK


class UnsafeTargetError(FiqaError):
    """The target exists and is not a regular file, or cannot be written; the message says
    which and why."""


def check_replaceable(target: str | os.PathLike[str]) -> int:
    """The mode a file written at `target` gets: that of the regular file it replaces (a
    service running as another user may need to read it), else that of a new file.
    UnsafeTargetError when `target` is a symbolic link or not a regular file."""
    try:
        mode = os.lstat(target).st_mode
    except FileNotFoundError:
        return _NEW_FILE_MODE
    except OSError as error:
        raise UnsafeTargetError(f"cannot check {target}: {error.strerror or error}") from None
    if stat.S_ISLNK(mode):
        raise UnsafeTargetError(
            f"{target} is a symbolic link, which fiqa neither follows nor replaces; "
            "pass the path it points to or a new path"
        )
    if not stat.S_ISREG(mode):
        raise UnsafeTargetError(f"{target} exists and is not a regular file; pass a new path")
    return stat.S_IMODE(mode)


@contextlib.contextmanager
def replacing(target: str | os.PathLike[str]) -> Iterator[Path]:
    """A new path to write the file to, renamed over `target` when the block ends without an
    error (and removed when it raises): `target` is never half-written, never a link that was
    followed. UnsafeTargetError when `target` is not replaceable or cannot be written."""
    target = Path(target)
    mode = check_replaceable(target)
    try:
        staging = Path(tempfile.mkdtemp(prefix=".fiqa-", dir=target.parent))
    except OSError as error:
        raise UnsafeTargetError(f"cannot write {target}: {error.strerror or error}") from None
    written = staging / target.name  # the same suffix, for writers that go by it
    try:
        yield written
        os.chmod(written, mode)
        os.replace(written, target)
    except OSError as error:
        raise UnsafeTargetError(f"cannot write {target}: {error.strerror or error}") from None
    finally:
        with contextlib.suppress(OSError):
            written.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            staging.rmdir()


def write_replacing(target: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` as the file `target`, through `replacing`."""
    with replacing(target) as path, open(path, "xb") as stream:
        stream.write(data)
