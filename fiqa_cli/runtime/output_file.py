"""Where `fiqa score` writes its rows: a locked `--out` file, or stdout.

A fault of the output (a full disk, a file-size limit, a lost pipe, a file another run holds)
ends the run with one clear line, and what was written stays whole: a write of one input's
rows that fails part-way is cut back off the file, so `--resume` finds only whole inputs.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from collections.abc import Callable

from fiqa_cli.errors import FiqaError

# Windows has neither O_CLOEXEC nor fcntl; O_BINARY keeps it from writing "\r\n" for "\n".
_OPEN_FLAGS = (
    os.O_WRONLY
    | os.O_CREAT
    | os.O_APPEND
    | sum(getattr(os, flag, 0) for flag in ("O_CLOEXEC", "O_BINARY"))
)
# Windows locks byte ranges, and its locks are mandatory: a lock on the rows themselves would
# stop anyone reading them during the run. One byte far beyond any real file is locked instead.
_WINDOWS_LOCK_OFFSET = 1 << 40


class _LockHeld(Exception):
    """Another process holds the output's lock."""


def _lock_exclusively(descriptor: int) -> None:
    """Takes the output's exclusive lock without waiting, where the system has locks: flock on
    POSIX, msvcrt.locking on Windows; both end with the process. Raises _LockHeld when another
    process has it; a file system without locks (some network mounts) is written unlocked."""
    try:
        import fcntl
    except ImportError:
        fcntl = None
    if fcntl is not None:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _LockHeld from None
        except OSError:
            pass
        return
    import msvcrt

    position = os.lseek(descriptor, 0, os.SEEK_CUR)
    os.lseek(descriptor, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
    try:
        msvcrt.locking(descriptor, msvcrt.LK_NBLCK, 1)
    except PermissionError:  # EACCES: another process holds the range
        raise _LockHeld from None
    except OSError:
        pass
    finally:
        os.lseek(descriptor, position, os.SEEK_SET)


class OutputError(FiqaError):
    """The output cannot be opened, locked or written; the message says which and why."""


class OutputFile:
    """`--out FILE` for one run, held under an exclusive lock so that two runs (two
    `--resume` of the same file, say) cannot both append to it."""

    def __init__(self, path: str, append: bool):
        self.path = path
        try:
            self._descriptor = os.open(path, _OPEN_FLAGS, 0o666)
        except OSError as error:
            raise OutputError(f"cannot write {path}: {error.strerror or error}") from None
        try:
            _lock_exclusively(self._descriptor)
        except _LockHeld:
            os.close(self._descriptor)
            raise OutputError(
                f"{path} is being written by another fiqa run (it holds the file's lock); "
                "wait for it to end or choose another --out"
            ) from None
        self._regular = stat.S_ISREG(os.fstat(self._descriptor).st_mode)
        # Emptied only once locked, so a run refused the lock cannot wipe the holder's rows.
        if self._regular and not append:
            os.ftruncate(self._descriptor, 0)

    def write(self, text: str) -> None:
        """Append `text` whole, or raise OutputError with the file as it was before."""
        data = memoryview(text.encode("utf-8", "surrogateescape"))
        start = os.fstat(self._descriptor).st_size if self._regular else 0
        written = 0
        try:
            while written < len(data):
                written += os.write(self._descriptor, data[written:])
        except BrokenPipeError:
            raise
        except OSError as error:
            if self._regular:
                with contextlib.suppress(OSError):
                    os.ftruncate(self._descriptor, start)
            raise OutputError(f"cannot write {self.path}: {error.strerror or error}") from None

    def flush(self) -> None:
        """Nothing to do: every write goes straight to the file."""

    def close(self) -> None:
        os.close(self._descriptor)  # releases the lock

    def __enter__(self) -> OutputFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class StandardOutput:
    """stdout as the output: a write that fails is one OutputError, a closed pipe a
    BrokenPipeError (the caller exits 141, as a process killed by SIGPIPE would)."""

    def __init__(self) -> None:
        # surrogateescape writes file names that are not UTF-8 back as the bytes they were.
        sys.stdout.reconfigure(errors="surrogateescape")

    def write(self, text: str) -> None:
        self._guarded(sys.stdout.write, text)

    def flush(self) -> None:
        self._guarded(sys.stdout.flush)

    def _guarded(self, action: Callable[..., object], *args: object) -> None:
        try:
            action(*args)
        except BrokenPipeError:
            discard_stdout()
            raise
        except OSError as error:
            discard_stdout()
            raise OutputError(f"cannot write to stdout: {error.strerror or error}") from None

    def __enter__(self) -> StandardOutput:
        return self

    def __exit__(self, *exc_info: object) -> None:
        pass


def open_output(out: str, append: bool = False) -> OutputFile | StandardOutput:
    """The output a command writes rows to: stdout for '-', else the locked file `out`."""
    return StandardOutput() if out == "-" else OutputFile(out, append)


def discard_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush of rows that can no longer
    be written does not print a second error after the one line that said why."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
