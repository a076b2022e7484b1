"""Issue 30, cases 8, 9, 11, 13: files fiqa names are written in a private folder and renamed
into place, never through a link planted where they go; a replaced file keeps its mode; a
frame `fiqa best --save` could not save says so on its row and on stderr."""

from __future__ import annotations

import csv
import io
import os
import stat
from pathlib import Path

import cv2
import numpy as np
import pytest
from limited_run import run_fiqa

from fiqa_cli.evaluation.results import write_results
from fiqa_cli.runtime.crop_files import crop_name
from fiqa_cli.runtime.safe_write import UnsafeTargetError, replacing, write_replacing

CROP_ARGS = ("--detector", "none", "--device", "cpu", "--workers", "1")
PRECIOUS = b"precious"


def victim(folder: Path) -> Path:
    path = folder / "victim.txt"
    path.write_bytes(PRECIOUS)
    return path


def planted(folder: Path, name: str) -> tuple[Path, Path, Path]:
    """A victim file, a link to it at `name` and a FIFO, with what each must be refused for."""
    target = victim(folder)
    link = folder / name
    link.symlink_to(target)
    fifo = folder / f"fifo_{name}"
    os.mkfifo(fifo)
    return target, link, fifo


REFUSALS = ("symbolic link", "not a regular file")


def rows_of(text: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text.decode(), newline="")))


def leftovers(folder: Path) -> list[str]:
    return [path.name for path in folder.iterdir() if path.name.startswith(".fiqa-")]


def test_a_planted_link_or_fifo_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    target, link, fifo = planted(tmp_path, "out.csv")
    for path, reason in zip((link, fifo), REFUSALS, strict=True):
        with pytest.raises(UnsafeTargetError, match=reason):
            write_replacing(path, b"rows")
    assert target.read_bytes() == PRECIOUS and link.is_symlink()
    with pytest.raises(UnsafeTargetError, match="symbolic link"):
        write_results(link, [{"method": "fiqa"}], [])
    assert target.read_bytes() == PRECIOUS and not leftovers(tmp_path)


def test_a_replaced_file_keeps_its_mode_and_a_failed_write_leaves_it(tmp_path: Path) -> None:
    model = tmp_path / "model.onnx"
    model.write_bytes(b"old")
    model.chmod(0o604)
    write_replacing(model, b"new")
    assert model.read_bytes() == b"new" and stat.S_IMODE(model.stat().st_mode) == 0o604
    with pytest.raises(RuntimeError), replacing(model) as written:
        written.write_bytes(b"half")
        raise RuntimeError("the writer failed")
    assert model.read_bytes() == b"new" and not leftovers(tmp_path)


def test_save_crops_never_writes_through_a_planted_link(random_onnx_model, tmp_path) -> None:
    image = tmp_path / "face.png"
    cv2.imwrite(str(image), np.full((112, 112, 3), 100, np.uint8))
    crops = tmp_path / "crops"
    crops.mkdir()
    target = victim(tmp_path)
    (crops / crop_name(str(image), 0)).symlink_to(target)
    args = ["score", "--model", random_onnx_model, *CROP_ARGS, "--save-crops", crops, image]
    done = run_fiqa(args)
    assert done.returncode == 0, done.stderr
    (row,) = rows_of(done.stdout)
    assert row["status"] == "ok" and "crop not saved" in row["message"], row
    assert "symbolic link" in row["message"]
    assert target.read_bytes() == PRECIOUS


@pytest.fixture
def burst(lfw_images: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "burst"
    folder.mkdir()
    (folder / "frame.jpg").write_bytes((lfw_images / "AJ_Cook/AJ_Cook_0001.jpg").read_bytes())
    return folder


def best(model: Path, burst: Path, saved: Path, **limits) -> tuple[dict[str, str], str]:
    args = ["best", "--model", model, "--device", "cpu", "--detector", "mtcnn", "-q"]
    done = run_fiqa([*args, "--save", saved, burst], **limits)
    assert done.returncode == 0, done.stderr
    (row,) = rows_of(done.stdout)
    return row, done.stderr.decode()


def test_best_save_never_writes_through_a_planted_link(random_onnx_model, burst, tmp_path):
    saved = tmp_path / "saved"
    row, stderr = best(random_onnx_model, burst, saved)
    assert row["status"] == "ok" and row["message"] == "" and stderr == ""
    names = sorted(path.name for path in saved.iterdir())
    assert len(names) == 2  # the frame and its aligned crop
    target = victim(tmp_path)
    for name in names:  # the names are predictable: plant links where the next run writes
        (saved / name).unlink()
        (saved / name).symlink_to(target)
    row, stderr = best(random_onnx_model, burst, saved)
    assert "frame not saved" in row["message"] and "symbolic link" in row["message"], row
    assert "frame not saved" in stderr  # said under -q too
    assert target.read_bytes() == PRECIOUS


def test_best_save_on_a_full_disk_says_so_on_the_row(random_onnx_model, burst, tmp_path):
    # every file the run writes is cut at 1 KB (rows go to a pipe, which the limit spares)
    row, stderr = best(random_onnx_model, burst, tmp_path / "saved", file_size_limit=1024)
    assert "frame not saved" in row["message"] and "File too large" in row["message"], row
    assert "frame not saved" in stderr


def test_report_out_is_never_a_link_or_a_fifo(tmp_path: Path) -> None:
    scores = tmp_path / "scores.csv"
    scores.write_text("path,face,quality,status,det_score,x1,y1,x2,y2,message\n")
    target, link, fifo = planted(tmp_path, "report.html")
    for out, reason in zip((link, fifo), REFUSALS, strict=True):
        done = run_fiqa(["report", scores, "--out", out], timeout=60)
        assert done.returncode == 1 and reason in done.stderr.decode(), done.stderr
        assert done.stderr.decode().startswith("Error: ") and done.stderr.count(b"\n") == 1
    assert target.read_bytes() == PRECIOUS
