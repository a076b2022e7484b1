"""Read an input file's bytes without ever blocking or reading without end.

An unattended scorer is given whatever a data team has: links to `/dev/zero`, FIFOs named
`x.jpg`, sockets, multi-gigabyte files. Only regular files are read, opened non-blocking (a
FIFO with no writer would otherwise block the open itself) and read up to a byte limit, so one
input can neither hang the run nor take all the memory.
"""

from __future__ import annotations

import errno
import os
import stat

from fiqa_cli.errors import FiqaError

# Far above any photo (a 50-megapixel 16-bit RGBA TIFF is 400 MB uncompressed, and such files
# are also refused by the pixel budget); the bound on what one input's bytes can cost.
MAX_INPUT_BYTES = 256 * 1024 * 1024

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
)
# Windows has no O_NONBLOCK, O_CLOEXEC or O_NOCTTY (nor FIFOs that could block an open), and
# needs O_BINARY, without which it would translate line ends in what it reads.
_OPEN_FLAGS = os.O_RDONLY | sum(
    getattr(os, flag, 0) for flag in ("O_NONBLOCK", "O_CLOEXEC", "O_NOCTTY", "O_BINARY")
)


class InputFileError(FiqaError):
    """The input cannot be read as a file; the message says why."""


def read_input_bytes(path: str | os.PathLike[str], max_bytes: int = MAX_INPUT_BYTES) -> bytes:
    """The bytes of the regular file at `path` (symlinks followed), at most `max_bytes`."""
    try:
        descriptor = os.open(path, _OPEN_FLAGS)
    except ValueError:  # the only ValueError os.open raises: a NUL byte in the path
        raise InputFileError("the path contains a NUL byte") from None
    except OSError as error:
        raise InputFileError(_open_failure(error)) from None
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise InputFileError(f"not a regular file: it is {_kind(info.st_mode)}")
        if info.st_size > max_bytes:
            raise InputFileError(f"file is {info.st_size} bytes, over the {max_bytes}-byte limit")
        # st_size can be stale (a file still growing): never read past the limit regardless.
        with os.fdopen(descriptor, "rb", closefd=False) as stream:
            data = stream.read(max_bytes + 1)
    except OSError as error:
        raise InputFileError(f"cannot read file: {error.strerror or error}") from None
    finally:
        os.close(descriptor)
    if len(data) > max_bytes:
        raise InputFileError(f"file grew over the {max_bytes}-byte limit while being read")
    return data


def _open_failure(error: OSError) -> str:
    reasons = {
        errno.ENOENT: "file not found",
        errno.EISDIR: "not a regular file: it is a directory",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.ENAMETOOLONG: "file name too long for the operating system",
        errno.ELOOP: "too many levels of symbolic links",
        errno.ENOTDIR: "a component of the path is not a directory",
    }
    return reasons.get(error.errno, f"cannot open file: {error.strerror or error}")


def _kind(mode: int) -> str:
    return next((kind for test, kind in _KINDS if test(mode)), "not a regular file")
