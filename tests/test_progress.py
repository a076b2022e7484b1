"""What `fiqa score` says on stderr while it runs and when it ends."""

from __future__ import annotations

import io
import time
from pathlib import Path

import cv2
import numpy as np
from click.testing import CliRunner

from fiqa_cli.cli import main
from fiqa_cli.commands.progress import RunProgress
from fiqa_cli.runtime.rows import NO_FACE, OK, UNREADABLE, Row


def test_live_line_counts_against_the_total_with_rate_and_eta() -> None:
    stream = io.StringIO()
    progress = RunProgress(live=True, count_inputs=lambda: iter(range(5)), stream=stream)
    deadline = time.monotonic() + 10
    while progress.total is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert progress.total == 5
    progress.add([Row("a.jpg", OK, face=0, quality=0.5), Row("a.jpg", OK, face=1, quality=0.4)])
    line = stream.getvalue().rsplit("\r", 1)[-1]
    assert line.startswith("scoring: 1/5 photos, ") and " photos/s, ETA 0:" in line
    progress.close()
    assert stream.getvalue().endswith("\r\x1b[K")  # the live line is cleared


def test_without_a_total_the_line_counts_alone_and_off_a_terminal_nothing_is_drawn() -> None:
    stream = io.StringIO()
    RunProgress(live=True, stream=stream).add([Row("a.jpg", OK, face=0, quality=0.5)])
    assert stream.getvalue().startswith("\rscoring: 1 photos, ") and "ETA" not in stream.getvalue()
    quiet = io.StringIO()
    progress = RunProgress(live=False, count_inputs=lambda: iter(range(5)), stream=quiet)
    progress.add([Row("a.jpg", UNREADABLE, message="x")])
    progress.close()
    assert quiet.getvalue() == "" and progress.total is None


def test_summary_counts_every_row_by_status() -> None:
    progress = RunProgress(live=False)
    progress.add([Row("a.jpg", OK, face=0, quality=0.5), Row("a.jpg", OK, face=1, quality=0.4)])
    progress.add([Row("b.jpg", NO_FACE, message="no face detected")])
    progress.add([Row("c.jpg", UNREADABLE, message="corrupt")])
    summary = progress.summary()
    assert summary.startswith("3 inputs: 2 faces scored, 1 no face, 1 unreadable, 0 errors; ")
    assert summary.endswith(" photos/s")


def test_every_run_but_a_quiet_one_ends_with_its_summary(
    random_onnx_model: Path, tmp_path: Path
) -> None:
    for index in range(2):
        cv2.imwrite(str(tmp_path / f"crop{index}.png"), np.full((112, 112, 3), 90, np.uint8))
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    arguments = ["score", str(tmp_path), "--model", str(random_onnx_model), "--detector", "none"]
    result = CliRunner().invoke(main, arguments)
    assert result.exit_code == 0, result.output
    summary = "fiqa: 3 inputs: 2 faces scored, 0 no face, 1 unreadable, 0 errors; "
    assert summary in result.stderr and result.stderr.rstrip().endswith(" photos/s")
    assert summary not in result.stdout
    quiet = CliRunner().invoke(main, [*arguments, "--quiet"])
    assert quiet.exit_code == 0 and quiet.stderr == ""
