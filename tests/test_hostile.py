"""Issue 14: no input can hang, exhaust or crash `fiqa score`, and no row is ever lost.

Each case of the issue is one test. Cases that hung or ate memory before their fix run in a
child process under a memory limit and a timeout (`tests/limited_run.py`).
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import signal
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from hostile_files import scan_bomb
from limited_run import run_fiqa

from fiqa_cli.cli import main
from fiqa_cli.runtime.crop_files import NAME_MAX_BYTES, crop_name
from fiqa_cli.runtime.input_file import InputFileError, read_input_bytes
from fiqa_cli.runtime.rows import COLUMNS, ScoreFileError, read_rows

# --detector none takes any image as an aligned crop: the fastest way through the scorer.
CROP_ARGS = ("--detector", "none", "--device", "cpu", "--workers", "1")


@pytest.fixture(autouse=True)
def hermetic_environment(tmp_path_factory: pytest.TempPathFactory, monkeypatch) -> None:
    monkeypatch.setenv("INSIGHTFACE_HOME", str(tmp_path_factory.mktemp("insightface_home")))
    for name in ("FIQA_MODEL", "FIQA_DETECTOR", "FIQA_DEVICE", "FIQA_WORKERS"):
        monkeypatch.delenv(name, raising=False)


def crop(folder: Path, name: str | bytes, seed: int = 0) -> Path:
    """A 112x112 PNG at `folder/name` (bytes: a name that need not be UTF-8)."""
    data = cv2.imencode(".png", np.random.default_rng(seed).integers(0, 256, (112, 112, 3)))[1]
    path = os.path.join(os.fsencode(folder), name) if isinstance(name, bytes) else folder / name
    with open(path, "wb") as stream:
        stream.write(data.tobytes())
    return Path(os.fsdecode(path))


def score(model: Path, *args: object, stdin: bytes | None = None):
    result = CliRunner().invoke(
        main, ["score", "--model", str(model), *CROP_ARGS, *map(str, args)], input=stdin
    )
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def csv_rows(text: str | bytes) -> list[dict[str, str]]:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "surrogateescape")
    return list(csv.DictReader(io.StringIO(text, newline="")))


def by_path(rows: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    return {row["path"]: row for row in rows}


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims `width`x`height` grey pixels, with a few rows of data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    data = zlib.compress(bytes((width + 1) * 4))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data))
    return path


# 1-3: only regular files are read, never in a way that blocks, and within budgets.


def test_endless_device_and_fifo_get_rows_and_the_run_ends(random_onnx_model, tmp_path) -> None:
    good = crop(tmp_path, "good.png")
    (tmp_path / "zero.jpg").symlink_to("/dev/zero")
    os.mkfifo(tmp_path / "pipe.jpg")
    args = [tmp_path / "zero.jpg", tmp_path / "pipe.jpg", good]
    done = run_fiqa(["score", "--model", random_onnx_model, *CROP_ARGS, *args], timeout=90)
    assert done.returncode == 0, done.stderr
    rows = by_path(csv_rows(done.stdout))
    assert "character device" in rows[str(tmp_path / "zero.jpg")]["message"]
    assert "FIFO" in rows[str(tmp_path / "pipe.jpg")]["message"]
    assert rows[str(good)]["status"] == "ok"
    # in folder mode too: every entry with an image name gets its row, none is skipped
    folder = run_fiqa(["score", "--model", random_onnx_model, *CROP_ARGS, tmp_path], timeout=90)
    assert folder.returncode == 0, folder.stderr
    rows = by_path(csv_rows(folder.stdout))
    assert len(rows) == 3
    assert rows[str(tmp_path / "pipe.jpg")]["status"] == "unreadable"
    assert rows[str(tmp_path / "zero.jpg")]["status"] == "unreadable"


def test_files_over_the_byte_limit_are_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    path.write_bytes(bytes(1000))
    assert len(read_input_bytes(path, max_bytes=1000)) == 1000
    with pytest.raises(InputFileError, match="over the 999-byte limit"):
        read_input_bytes(path, max_bytes=999)


def test_pixel_budget_is_checked_on_the_header(random_onnx_model, tmp_path) -> None:
    small = crop(tmp_path, "small.png")
    large = tmp_path / "large.png"
    cv2.imwrite(str(large), np.zeros((1200, 1000, 3), np.uint8))
    result = score(random_onnx_model, "--max-pixels", 1_000_000, small, large)
    assert result.exit_code == 0, result.output
    rows = by_path(csv_rows(result.stdout))
    assert rows[str(small)]["status"] == "ok"
    assert rows[str(large)]["status"] == "unreadable"
    assert "1000x1200" in rows[str(large)]["message"]
    assert "--max-pixels" in rows[str(large)]["message"]


def test_bombs_beyond_opencvs_own_limit_are_unreadable(random_onnx_model, tmp_path) -> None:
    bomb = png_header_only(tmp_path / "bomb.png", 60000, 60000)
    (row,) = csv_rows(score(random_onnx_model, bomb).stdout)
    assert row["status"] == "unreadable" and "60000x60000" in row["message"]


# 4-6: whatever the path is, it becomes a row (or, for stdin itself, one clear error).


def test_too_long_and_nul_paths_are_rows(random_onnx_model, tmp_path) -> None:
    good = crop(tmp_path, "good.png")
    too_long = tmp_path / ("x" * 300 + ".jpg")
    result = score(random_onnx_model, too_long, good)
    assert result.exit_code == 0, result.output
    rows = csv_rows(result.stdout)
    assert [row["status"] for row in rows] == ["unreadable", "ok"]
    assert "too long" in rows[0]["message"]
    stdin = f"{tmp_path}/a\0b.jpg\n{good}\n".encode()
    rows = csv_rows(score(random_onnx_model, "-", stdin=stdin).stdout)
    assert [row["status"] for row in rows] == ["unreadable", "ok"]
    assert "NUL" in rows[0]["message"]


@pytest.mark.skipif(os.geteuid() == 0, reason="running as root: permissions do not block listing")
def test_unlistable_folder_is_a_row(random_onnx_model, tmp_path) -> None:
    crop(tmp_path, "good.png")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0)
    try:
        rows = by_path(csv_rows(score(random_onnx_model, tmp_path).stdout))
    finally:
        locked.chmod(0o755)
    assert "cannot list folder" in rows[str(locked)]["message"]


def test_stdin_names_that_are_not_utf8_keep_their_bytes(random_onnx_model, tmp_path) -> None:
    odd = crop(tmp_path, b"caf\xe9.png")
    good = crop(tmp_path, "good.png")
    out = tmp_path / "out.csv"
    stdin = os.fsencode(odd) + b"\n" + os.fsencode(good) + b"\n"
    result = score(random_onnx_model, "-", "--out", out, stdin=stdin)
    assert result.exit_code == 0, result.output
    assert os.fsencode(odd) in out.read_bytes()
    assert [row["status"] for row in read_rows(out)] == ["ok", "ok"]


def test_closed_stdin_is_one_error_line(random_onnx_model) -> None:
    done = run_fiqa(["score", "--model", random_onnx_model, *CROP_ARGS, "-"], close_stdin=True)
    assert done.returncode == 1
    assert done.stderr.decode().strip() == (
        "Error: '-' reads input paths from stdin, but stdin is closed"
    )


# 7-11: faults of the output end with one line; what was written stays whole.


def test_full_disk_is_one_error_line(random_onnx_model, tmp_path) -> None:
    good = crop(tmp_path, "good.png")
    done = run_fiqa(["score", "--model", random_onnx_model, *CROP_ARGS, good, "--out", "/dev/full"])
    assert done.returncode == 1
    assert done.stderr.decode().strip() == "Error: cannot write /dev/full: No space left on device"


def test_output_filling_mid_run_stays_whole_and_resume_completes_it(
    random_onnx_model, tmp_path
) -> None:
    inputs = [crop(tmp_path, f"crop{index:02d}.png", index) for index in range(12)]
    whole = tmp_path / "whole.csv"
    args = ["score", "--model", random_onnx_model, *CROP_ARGS, "--batch-size", "1", *inputs]
    assert run_fiqa([*args, "--out", whole]).returncode == 0
    cut = tmp_path / "cut.csv"
    # the file may grow to 700 bytes: the header and a few rows fit, then writes fail
    done = run_fiqa([*args, "--out", cut], file_size_limit=700)
    assert done.returncode == 1
    assert done.stderr.decode().strip().startswith(f"Error: cannot write {cut}: File too large")
    kept = cut.read_bytes()
    assert 0 < len(kept) <= 700 and kept.endswith(b"\n")  # only whole rows
    assert whole.read_bytes().startswith(kept)
    assert run_fiqa([*args, "--out", cut, "--resume"]).returncode == 0
    assert cut.read_bytes() == whole.read_bytes()


def test_a_parquet_output_that_cannot_be_written_is_one_error_line(
    random_onnx_model, tmp_path
) -> None:
    inputs = [crop(tmp_path, f"crop{index:02d}.png", index) for index in range(12)]
    out = tmp_path / "cut.parquet"
    args = ["score", "--model", random_onnx_model, *CROP_ARGS, *inputs, "--out", out]
    done = run_fiqa(args, file_size_limit=300)  # the rows and footer, written at the end, fail
    assert done.returncode == 1
    lines = done.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: cannot write {out}:"), lines
    # Neither a footerless file where the output goes nor its private folder is left behind.
    assert not out.exists() and not list(tmp_path.glob(".fiqa-*"))


def test_crops_that_cannot_be_saved_are_row_warnings(random_onnx_model, tmp_path) -> None:
    long_name = crop(tmp_path, "n" * 250 + ".png")
    blocked = crop(tmp_path, "blocked.png", 1)
    crops = tmp_path / "crops"
    (crops / crop_name(str(blocked), 0)).mkdir(parents=True)  # a folder where the crop goes
    result = score(random_onnx_model, "--save-crops", crops, long_name, blocked)
    assert result.exit_code == 0, result.output
    rows = by_path(csv_rows(result.stdout))
    assert rows[str(long_name)]["status"] == "ok" and rows[str(long_name)]["message"] == ""
    assert rows[str(blocked)]["status"] == "ok"
    assert "crop not saved" in rows[str(blocked)]["message"]
    saved = [path.name for path in crops.iterdir() if path.is_file()]
    assert len(saved) == 1 and len(os.fsencode(saved[0])) <= NAME_MAX_BYTES


def test_endless_stdin_line_is_a_row_and_the_output_reads_back(random_onnx_model, tmp_path):
    good = crop(tmp_path, "good.png")
    out = tmp_path / "out.csv"
    stdin = b"g" * 10_000_000 + b"\n" + os.fsencode(good) + b"\n"
    assert score(random_onnx_model, "-", "--out", out, stdin=stdin).exit_code == 0
    rows = read_rows(out)
    assert [row["status"] for row in rows] == ["unreadable", "ok"]
    assert "longer than" in rows[0]["message"] and len(rows[0]["path"]) < 1000
    again = score(random_onnx_model, "-", "--out", out, "--resume", stdin=stdin)
    assert again.exit_code == 0, again.output
    assert len(read_rows(out)) == 2


def test_long_cells_read_back(tmp_path: Path) -> None:
    out = tmp_path / "long.csv"
    out.write_text("path,face,quality,status,det_score,x1,y1,x2,y2,message\n"
                   f"{'p' * 200_000},,,unreadable,,,,,,why\n")  # fmt: skip
    (row,) = read_rows(out)
    assert len(row["path"]) == 200_000


def test_carriage_return_in_a_name_is_quoted(random_onnx_model, tmp_path) -> None:
    odd = crop(tmp_path, "a\rb.png")
    out = tmp_path / "out.csv"
    assert score(random_onnx_model, odd, "--out", out).exit_code == 0
    assert [row["path"] for row in read_rows(out)] == [str(odd)]
    again = score(random_onnx_model, odd, "--out", out, "--resume")
    assert again.exit_code == 0, again.output
    assert len(read_rows(out)) == 1


def test_an_output_another_run_holds_is_refused(random_onnx_model, tmp_path) -> None:
    good = crop(tmp_path, "good.png")
    out = tmp_path / "out.csv"
    assert score(random_onnx_model, good, "--out", out).exit_code == 0
    before = out.read_bytes()
    with open(out, "a") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
        for extra in ((), ("--resume",)):
            result = score(random_onnx_model, good, "--out", out, *extra)
            assert result.exit_code == 1
            assert "being written by another fiqa run" in result.output
    assert out.read_bytes() == before  # the refused runs did not empty or append to it


# 12-14: the model and the values it gives.


def _model(
    path: Path,
    *,
    side: int = 112,
    quality_shape=("N", 1),
    nan: bool = False,
    per_batch: bool = False,
    strings: bool = False,
    **meta,
):
    """An ONNX graph `input` (Nx3xSIDExSIDE) -> `quality` (the mean pixel, or NaN); with
    `per_batch` one mean for the whole batch, with `strings` the mean as a string."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    axes = [0, 1, 2, 3] if per_batch else [1, 2, 3]
    nodes = [helper.make_node("ReduceMean", ["input"], ["mean"], axes=axes, keepdims=0)]
    if per_batch:
        nodes[0].output[0] = "scalar"
        nodes.append(helper.make_node("Unsqueeze", ["scalar", "zero_axis"], ["mean"]))
    if nan:
        nodes.append(helper.make_node("Constant", [], ["zero"], value_float=0.0))
        nodes.append(helper.make_node("Div", ["zero", "zero"], ["nan"]))
        nodes.append(helper.make_node("Add", ["mean", "nan"], ["flat"]))
    else:
        nodes.append(helper.make_node("Identity", ["mean"], ["flat"]))
    if quality_shape == ():
        nodes.append(helper.make_node("ReduceMean", ["flat"], ["quality"], keepdims=0))
    else:
        nodes.append(helper.make_node("Unsqueeze", ["flat", "axes"], ["unsqueezed"]))
        kind = TensorProto.STRING if strings else TensorProto.FLOAT
        nodes.append(helper.make_node("Cast", ["unsqueezed"], ["quality"], to=kind))
    kind = TensorProto.STRING if strings else TensorProto.FLOAT
    graph = helper.make_graph(
        nodes,
        "probe",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, side, side])],
        [helper.make_tensor_value_info("quality", kind, list(quality_shape))],
        initializer=[
            helper.make_tensor("axes", TensorProto.INT64, [1], [1]),
            helper.make_tensor("zero_axis", TensorProto.INT64, [1], [0]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    helper.set_model_props(model, {f"fiqa.{key}": str(value) for key, value in meta.items()})
    onnx.save(model, path)
    return path


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ({"side": 64}, "64x64"),
        ({"input_size": "abc"}, "input_size='abc'"),
        ({"input_size": 0}, "input_size='0'"),
        ({"input_size": 10**9}, "input_size='1000000000'"),
        ({"quality_shape": ()}, "shape []"),
        ({"pixel_scale": "nan"}, "pixel_scale='nan'"),
        ({"quality_shape": (1, 1), "per_batch": True}, "shape [1, 1] for input shape ['N'"),
        ({"strings": True}, "tensor(string), not floating point"),
    ],
    ids=[
        "64x64",
        "abc",
        "zero",
        "huge",
        "scalar",
        "nan-scale",
        "per-batch",
        "string",
    ],
)
def test_model_contract_is_checked_at_load(tmp_path: Path, spec: dict, reason: str) -> None:
    model = _model(tmp_path / "bad.onnx", **spec)
    doctor = CliRunner().invoke(main, ["doctor", "--model", str(model), "--device", "cpu"])
    assert doctor.exit_code == 1 and reason in doctor.output, doctor.output
    result = score(model, crop(tmp_path, "good.png"))
    assert result.exit_code == 1 and reason in result.output, result.output
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1


def test_non_finite_quality_is_an_error_row(tmp_path: Path) -> None:
    model = _model(tmp_path / "nan.onnx", nan=True)
    good = crop(tmp_path, "good.png")
    result = score(model, good, "--format", "jsonl", "--fail-under", "-1e9")
    assert result.exit_code == 3  # NaN passes no --fail-under
    (row,) = [json.loads(line, parse_constant=pytest.fail) for line in result.stdout.splitlines()]
    assert row["status"] == "error" and row["quality"] is None
    assert "non-finite" in row["message"]


def test_fail_under_must_be_finite(random_onnx_model, tmp_path) -> None:
    for value in ("nan", "inf", "-inf"):
        result = score(random_onnx_model, "--fail-under", value, crop(tmp_path, "good.png"))
        assert result.exit_code == 2 and "finite" in result.output, result.output


# 15: `fiqa evaluate` reads score files it did not write.


@pytest.mark.parametrize(
    "line",
    [
        "[" * 100_000 + "]" * 100_000,
        '{"path": "a.jpg", "status": "ok", "quality": true}',
        '{"path": "a.jpg", "status": "ok", "quality": NaN}',  # issue 30: fiqa writes none
        '{"path": "a.jpg", "status": "ok", "quality": 0.5, "x1": 1e999}',
    ],
    ids=["deep", "boolean", "nan", "inf-box"],
)
def test_score_files_with_odd_json_are_refused(tmp_path: Path, line: str) -> None:
    path = tmp_path / "scores.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(ScoreFileError, match="scores.jsonl:1: not a fiqa score row"):
        read_rows(path)


# smaller: nothing but rows and their warnings under -q.


def test_quiet_run_writes_nothing_on_stderr(random_onnx_model, lfw_images, tmp_path) -> None:
    photos = sorted(lfw_images.glob("*/*_0001.jpg"))[:6]
    broken = tmp_path / "broken.png"
    broken.write_bytes(cv2.imencode(".png", np.zeros((50, 50, 3), np.uint8))[1].tobytes()[:60])
    # issue 30: messages libjpeg, libpng and FFmpeg write to stderr themselves
    rescanned = tmp_path / "rescanned.jpg"
    rescanned.write_bytes(scan_bomb(64, 20))  # "Inconsistent progression sequence"
    crc = bytearray(cv2.imencode(".png", np.full((100, 100, 3), 9, np.uint8))[1].tobytes())
    crc[40:44] = b"XXXX"  # "libpng error: IDAT: CRC error"
    (tmp_path / "crc.png").write_bytes(bytes(crc))
    inputs = [*photos, broken, rescanned, tmp_path / "crc.png"]
    args = ["score", "--model", random_onnx_model, "--detector", "mtcnn", "--workers", "3"]
    done = run_fiqa([*args, "-q", "--device", "cpu", *inputs])
    assert done.returncode == 0
    assert done.stderr == b""
    assert len(csv_rows(done.stdout)) == len(inputs)
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(100))  # "moov atom not found"
    done = run_fiqa(["best", "--model", random_onnx_model, "-q", "--device", "cpu", clip])
    assert done.returncode == 3 and done.stderr == b"", done.stderr


def _score_child(model: Path, *args: object) -> subprocess.Popen:
    command = [sys.executable, "-m", "fiqa_cli", "score", "--model", str(model), *CROP_ARGS]
    return subprocess.Popen(
        [*command, *map(str, args)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=_default_sigint,
    )


def _default_sigint() -> None:
    """The child gets SIGINT as a foreground job in a terminal does. A suite started with `&`
    from a script (a CI runner may do that) inherits SIGINT ignored, and Python then keeps it
    ignored, as every program should: Ctrl-C is not meant for background jobs."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_interrupt_exits_130(random_onnx_model, tmp_path) -> None:
    child = _score_child(random_onnx_model, "-")
    child.stdin.write(f"{crop(tmp_path, 'good.png')}\n".encode())
    child.stdin.flush()
    child.stdout.readline()  # the header
    child.stdout.readline()  # the first row: the model is loaded, stdin is being read
    child.send_signal(signal.SIGINT)
    assert child.wait(timeout=60) == 130
    assert b"Traceback" not in child.stderr.read()


def test_closed_output_pipe_exits_141(random_onnx_model, tmp_path) -> None:
    inputs = [crop(tmp_path, f"crop{index}.png", index) for index in range(30)]
    child = _score_child(random_onnx_model, "--batch-size", "1", *inputs)
    child.stdout.readline()
    child.stdout.close()  # as `fiqa score ... | head -1` does
    assert child.wait(timeout=60) == 141
    assert child.stderr.read() == b""


# Issue 30, cases 6 and 10: --resume reads its output a line at a time, and refuses a file
# that is not fiqa output before touching it.


def test_resume_memory_does_not_grow_with_the_rows(tmp_path: Path) -> None:
    out = tmp_path / "big.csv"
    with out.open("w") as stream:
        stream.write(",".join(COLUMNS) + "\n")
        for index in range(300_000):
            stream.write(f"/photos/s{index // 1000:04d}/p{index:07d}.jpg,0,0.5,ok,0.9,1,2,3,4,\n")
        stream.write("/photos/cut")  # a killed run's last line
    # 300,000 rows held as row dicts took over 300 MB; what resuming needs, about 60 MB
    limit = 200 * 1024**2
    code = (
        "import resource, sys; from pathlib import Path\n"
        f"resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))\n"
        "from fiqa_cli.runtime.rows import prepare_resume\n"
        "print(len(prepare_resume(Path(sys.argv[1]), 'csv')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(out)], capture_output=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert done.stdout.decode().strip() == "300000"
    assert out.read_bytes().endswith(b",\n")  # the cut line is cut off


def test_resume_of_a_file_that_is_not_fiqa_output_touches_nothing(random_onnx_model, tmp_path):
    out = tmp_path / "notes.csv"
    out.write_bytes(b"my notes\nnot a fiqa row, and no newline at the end")
    before = out.read_bytes()
    result = score(random_onnx_model, crop(tmp_path, "good.png"), "--out", out, "--resume")
    assert result.exit_code == 1 and "cannot resume" in result.output, result.output
    assert out.read_bytes() == before
