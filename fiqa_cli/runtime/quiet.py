"""`-q`: nothing on stderr but fiqa's own errors and warnings.

libjpeg, libpng and FFmpeg write their messages ("Inconsistent progression sequence", "libpng
error: IDAT: CRC error", "moov atom not found") straight to file descriptor 2, past Python and
OpenCV's log level; why an input failed is said in its row already.
"""

from __future__ import annotations

import os
import sys
import warnings


def keep_libraries_quiet() -> None:
    """Point file descriptor 2, where C libraries write, at /dev/null and give Python's
    `sys.stderr` a copy of the real one, so that fiqa's own lines (and a traceback, were there
    one) still reach it; Python warnings (numpy's on extreme values) are ignored. The
    descriptors are left alone where `sys.stderr` is not descriptor 2 (a test runner's
    capture)."""
    warnings.simplefilter("ignore")
    try:
        if sys.stderr.fileno() != 2:
            return
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both
        return
    sys.stderr.flush()
    real = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    sys.stderr = os.fdopen(real, "w", buffering=1, encoding="utf-8", errors="backslashreplace")
