"""Run `fiqa` in a child process under a memory limit and a timeout, so that a regression that
hangs, or reads or decodes without bound, fails its test instead of taking the machine down."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from collections.abc import Sequence

# Address space for one child: Python, onnxruntime and OpenCV with their thread stacks map
# about 2 GB; a bomb or an endless read would need far more.
MEMORY_LIMIT_BYTES = 4 * 1024**3
TIMEOUT_S = 120


def run_fiqa(
    args: Sequence[object],
    *,
    stdin: bytes | None = None,
    close_stdin: bool = False,
    file_size_limit: int | None = None,
    timeout: float = TIMEOUT_S,
) -> subprocess.CompletedProcess[bytes]:
    """`python -m fiqa_cli ARGS` with its output captured; `close_stdin` starts it with no
    stdin at all, `file_size_limit` caps every file it writes (RLIMIT_FSIZE), as a full disk
    would mid-run. A run past `timeout` raises subprocess.TimeoutExpired."""

    def limits() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_BYTES, MEMORY_LIMIT_BYTES))
        if file_size_limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))
        if close_stdin:
            os.close(0)

    return subprocess.run(
        [sys.executable, "-m", "fiqa_cli", *(a if isinstance(a, bytes) else str(a) for a in args)],
        input=stdin,
        stdin=None if stdin is not None or close_stdin else subprocess.DEVNULL,
        capture_output=True,
        timeout=timeout,
        preexec_fn=limits,
    )
