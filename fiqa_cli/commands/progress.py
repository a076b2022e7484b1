"""What `fiqa score` tells a person on stderr while it runs and when it ends: inputs done out of
the total (counted in the background), photos/s and the time left on a terminal, and one summary
line at the end of every run."""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import TextIO

from fiqa_cli.runtime.rows import ERROR, NO_FACE, OK, UNREADABLE, Row

# A terminal line redrawn at most this often: enough to look live, far below the row rate.
_REDRAW_SECONDS = 0.25


class RunProgress:
    """Counts the rows of each input as it is written; on a terminal, redraws `k/N photos,
    R photos/s, ETA` in place. `count_inputs` lists the inputs again for the total, in a
    background thread (never before the first row: a folder of millions starts at once);
    None where no total can be known (stdin)."""

    def __init__(
        self,
        *,
        live: bool,
        count_inputs: Callable[[], Iterable[object]] | None = None,
        stream: TextIO | None = None,
    ) -> None:
        self._stream = stream or sys.stderr
        self._live = live
        self._start = time.monotonic()
        self._last_draw = 0.0
        self.inputs = 0
        self.rows: Counter[str] = Counter()
        self.total: int | None = None
        if live and count_inputs is not None:
            threading.Thread(target=self._count, args=(count_inputs,), daemon=True).start()

    def _count(self, count_inputs: Callable[[], Iterable[object]]) -> None:
        try:
            self.total = sum(1 for _ in count_inputs())
        except Exception:  # the count is a courtesy: the run itself reports what it cannot read
            self.total = None

    def add(self, rows: list[Row]) -> None:
        self.inputs += 1
        self.rows.update(row.status for row in rows)
        now = time.monotonic()
        if self._live and now - self._last_draw >= _REDRAW_SECONDS:
            self._last_draw = now
            self._draw(self._live_line(now))

    def _live_line(self, now: float) -> str:
        seconds = now - self._start
        rate = self.inputs / seconds if seconds > 0 else 0.0
        done = f"{self.inputs}/{self.total}" if self.total is not None else str(self.inputs)
        line = f"scoring: {done} photos, {rate:.1f} photos/s"
        if self.total is not None and rate > 0 and self.total >= self.inputs:
            line += f", ETA {_clock((self.total - self.inputs) / rate)}"
        return line

    def _draw(self, line: str) -> None:
        # Carriage return, the line, then erase what a longer line left to its right.
        self._stream.write(f"\r{line}\x1b[K")
        self._stream.flush()

    def close(self) -> None:
        """Clears the live line, leaving the terminal as it was."""
        if self._live and self._last_draw:
            self._stream.write("\r\x1b[K")
            self._stream.flush()

    def summary(self) -> str:
        """One line: inputs, faces scored, no face, unreadable, errors, seconds, photos/s."""
        seconds = time.monotonic() - self._start
        rate = self.inputs / seconds if seconds > 0 else 0.0
        return (
            f"{self.inputs} inputs: {self.rows[OK]} faces scored, {self.rows[NO_FACE]} no face, "
            f"{self.rows[UNREADABLE]} unreadable, {self.rows[ERROR]} errors; "
            f"{seconds:.1f} s, {rate:.1f} photos/s"
        )


def _clock(seconds: float) -> str:
    minutes, second = divmod(int(seconds + 0.5), 60)
    hours, minute = divmod(minutes, 60)
    return f"{hours}:{minute:02d}:{second:02d}" if hours else f"{minute}:{second:02d}"
