"""`fiqa score`: the command contract of issue 2, on real photos and real detectors."""

from __future__ import annotations

import csv
import io
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from fiqa_cli.cli import main
from fiqa_cli.commands.samples import sample_photos
from fiqa_cli.runtime.align import align_face
from fiqa_cli.runtime.decode import read_image
from fiqa_cli.runtime.detect import create_detector
from fiqa_cli.runtime.mtcnn import find_weights_dir
from fiqa_cli.runtime.rows import COLUMNS

STREAM_TIMEOUT_S = 60


@pytest.fixture(autouse=True)
def hermetic_environment(tmp_path_factory: pytest.TempPathFactory, monkeypatch) -> None:
    """No SCRFD model in insightface's root unless a test puts one there; no env overrides."""
    monkeypatch.setenv("INSIGHTFACE_HOME", str(tmp_path_factory.mktemp("insightface_home")))
    for name in ("FIQA_MODEL", "FIQA_DETECTOR", "FIQA_DEVICE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def faces_dir(lfw_images: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight LFW photos of different people, in a folder with nested and upper-case names."""
    folder = tmp_path_factory.mktemp("faces")
    sources = sorted(lfw_images.glob("*/*_0001.jpg"))[:8]
    for index, source in enumerate(sources):
        target = folder / ("sub" if index % 2 else "") / source.name
        if index == 3:
            target = target.with_suffix(".JPG")
        target.parent.mkdir(exist_ok=True)
        shutil.copy(source, target)
    return folder


def run_score(*args: object, stdin: str | None = None):
    result = CliRunner().invoke(main, ["score", *map(str, args)], input=stdin)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def parse_csv(text: str) -> list[dict[str, object]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    assert tuple(reader.fieldnames) == COLUMNS
    return [_typed(record) for record in reader]


def parse_jsonl(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines()]


def _typed(record: dict[str, str]) -> dict[str, object]:
    numbers = {"quality", "det_score", "x1", "y1", "x2", "y2"}
    typed: dict[str, object] = {}
    for key, value in record.items():
        if key in numbers or key == "face":
            typed[key] = None if value == "" else (int(value) if key == "face" else float(value))
        else:
            typed[key] = value
    return typed


def test_csv_jsonl_and_parquet_hold_the_same_rows_in_input_order(
    random_onnx_model: Path, faces_dir: Path, tmp_path: Path
) -> None:
    pq = pytest.importorskip("pyarrow.parquet")  # the ray extra of CI's install brings it
    photos = [str(path) for path in sample_photos()]
    args = ["--model", random_onnx_model, *photos, faces_dir]
    csv_result = run_score(*args)
    jsonl_out = tmp_path / "scores.jsonl"
    jsonl_result = run_score(*args, "--out", jsonl_out)  # format from the suffix
    parquet_out = tmp_path / "scores.parquet"
    parquet_result = run_score(*args, "--out", parquet_out)
    assert csv_result.exit_code == 0 and jsonl_result.exit_code == 0, csv_result.stderr
    assert parquet_result.exit_code == 0, parquet_result.stderr
    csv_rows = parse_csv(csv_result.stdout)
    assert csv_rows == parse_jsonl(jsonl_out.read_text(encoding="utf-8"))
    assert csv_rows == pq.read_table(parquet_out).to_pylist()
    expected_order = photos + [
        str(faces_dir / name)
        for name in sorted(
            str(path.relative_to(faces_dir)) for path in faces_dir.rglob("*") if path.is_file()
        )
    ]
    assert [row["path"] for row in csv_rows] == expected_order
    for row in csv_rows:
        assert row["status"] == "ok" and row["face"] == 0 and row["message"] == ""
        assert isinstance(row["quality"], float) and np.isfinite(row["quality"])
        assert 0.5 <= row["det_score"] <= 1.0
        assert row["x1"] < row["x2"] and row["y1"] < row["y2"]
    # Different faces, different scores: not one constant written for every row.
    assert len({row["quality"] for row in csv_rows}) == len(csv_rows)
    assert "detector: yunet" in csv_result.stderr  # auto says what it picked


def test_faces_all_and_largest(random_onnx_model: Path) -> None:
    group = next(path for path in sample_photos() if path.name == "t1.jpg")
    every = parse_csv(run_score("--model", random_onnx_model, "--faces", "all", group).stdout)
    largest = parse_csv(run_score("--model", random_onnx_model, group).stdout)
    assert [row["face"] for row in every] == list(range(6))
    assert len(largest) == 1

    def area(row):
        return (row["x2"] - row["x1"]) * (row["y2"] - row["y1"])

    assert largest[0]["x1"] == every[0]["x1"] and largest[0]["quality"] == every[0]["quality"]
    assert area(every[0]) == max(area(row) for row in every)


def _face_variants(face_path: Path, folder: Path) -> dict[str, tuple[Path, str, str]]:
    """Files made from one real face photo: name -> (path, expected status, message part)."""
    bgr = read_image(face_path)
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    jpeg = face_path.read_bytes()
    made: dict[str, tuple[Path, str, str]] = {}

    def add(name: str, status: str, message: str = "") -> Path:
        made[name] = (folder / name, status, message)
        return folder / name

    add("zero.jpg", "unreadable", "empty file").write_bytes(b"")
    add("text.jpg", "unreadable", "not a decodable image").write_text("hello, not a photo\n")
    add("truncated.jpg", "unreadable", "truncated").write_bytes(jpeg[: len(jpeg) // 2])
    corrupt = bytearray(jpeg)
    corrupt[2:300] = bytes(298)
    add("corrupt.jpg", "unreadable", "corrupt image header").write_bytes(bytes(corrupt))
    add("vector.svg", "unreadable", "not a decodable image").write_text("<svg></svg>")
    cv2.imwrite(str(add("grey.png", "ok")), cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(add("alpha.png", "ok")), cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA))
    cv2.imwrite(str(add("deep.png", "ok")), bgr.astype(np.uint16) * 257)
    Image.fromarray(rgb).convert("CMYK").save(add("cmyk.jpg", "ok"), quality=95)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned 90 degrees counter-clockwise
    Image.fromarray(np.ascontiguousarray(np.rot90(rgb))).save(
        add("rotated.jpg", "ok"), quality=95, exif=exif.tobytes()
    )
    large = cv2.copyMakeBorder(
        cv2.resize(bgr, (9000, 9000), interpolation=cv2.INTER_LINEAR),
        0, 0, 1500, 1500, cv2.BORDER_REPLICATE,
    )  # fmt: skip
    cv2.imwrite(str(add("large_12000x9000.jpg", "ok")), large, [cv2.IMWRITE_JPEG_QUALITY, 80])
    cv2.imwrite(str(add("tiny.png", "no_face", "no face detected")), cv2.resize(bgr, (20, 20)))
    cv2.imwrite(str(add("blank.png", "no_face", "no face detected")), np.full_like(bgr, 90))
    # the bottom of the photo cut away just below the eyes: nose and mouth are outside
    detector = create_detector("mtcnn")
    eyes_y = int(detector.detect(bgr)[0].landmarks[:2, 1].max())
    cv2.imwrite(str(add("cut.png", "no_face", "cut off")), bgr[: eyes_y + 12])
    shutil.copy(face_path, add('Zoë, "Ann" O\'Brien 写真.jpg', "ok"))
    add("missing.jpg", "unreadable", "file not found")
    (folder / "empty_dir").mkdir()
    made["empty_dir"] = (folder / "empty_dir", "unreadable", "no image files")
    return made


def test_every_bad_input_gets_one_defined_row(
    random_onnx_model: Path, lfw_images: Path, tmp_path: Path
) -> None:
    face_path = sorted(lfw_images.glob("*/*_0001.jpg"))[0]
    variants = _face_variants(face_path, tmp_path)
    paths = [str(path) for path, _, _ in variants.values()]
    result = run_score("--model", random_onnx_model, "--detector", "mtcnn", *paths)
    assert result.exit_code == 0, result.stderr
    rows = parse_csv(result.stdout)
    assert [row["path"] for row in rows] == paths
    for (name, (_, status, message)), row in zip(variants.items(), rows, strict=True):
        assert row["status"] == status, (name, row)
        assert message in row["message"], (name, row)
        assert (row["quality"] is None) == (status != "ok"), (name, row)
    by_name = {Path(row["path"]).name: row for row in rows}
    upright = parse_csv(run_score("--model", random_onnx_model, face_path).stdout)[0]
    for name in ("rotated.jpg", "cmyk.jpg", "grey.png"):
        assert abs(by_name[name]["x1"] - upright["x1"]) < 6, name  # the upright face was found
    large = by_name["large_12000x9000.jpg"]
    assert large["x2"] - large["x1"] > 2000  # box in original, not downscaled, coordinates


@pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0,
    reason="running as root: file permissions do not block reading",
)
def test_unreadable_permission_row(random_onnx_model: Path, faces_dir: Path, tmp_path) -> None:
    locked = tmp_path / "locked.jpg"
    shutil.copy(next(faces_dir.glob("*.jpg")), locked)
    locked.chmod(0)
    rows = parse_csv(run_score("--model", random_onnx_model, locked).stdout)
    assert rows[0]["status"] == "unreadable" and "permission denied" in rows[0]["message"]


def test_detector_none_takes_aligned_crops(
    random_onnx_model: Path, faces_dir: Path, tmp_path: Path
) -> None:
    image = read_image(next(faces_dir.glob("*.jpg")))
    face = create_detector("mtcnn").detect(image)[0]
    aligned = tmp_path / "aligned.png"
    cv2.imwrite(str(aligned), align_face(image, face.landmarks))
    unaligned = tmp_path / "photo.png"
    cv2.imwrite(str(unaligned), image)
    result = run_score("--model", random_onnx_model, "--detector", "none", aligned, unaligned)
    rows = parse_csv(result.stdout)
    assert [row["status"] for row in rows] == ["ok", "ok"]
    assert rows[0]["message"] == "" and rows[0]["det_score"] is None
    assert "resized" in rows[1]["message"] and "resized" in result.stderr
    with_detection = parse_csv(
        run_score("--model", random_onnx_model, "--detector", "mtcnn", unaligned).stdout
    )
    assert abs(with_detection[0]["quality"] - rows[0]["quality"]) < 1e-3 * max(
        1.0, abs(rows[0]["quality"])
    )


def test_scrfd_path_and_save_crops(
    random_onnx_model: Path, faces_dir: Path, shared_dir: Path, tmp_path: Path
) -> None:
    crops = tmp_path / "crops"
    result = run_score(
        "--model", random_onnx_model,
        "--detector", "scrfd",
        "--detector-model", shared_dir / "models" / "scrfd_500m_bnkps.onnx",
        "--save-crops", crops,
        "--quiet",
        faces_dir,
    )  # fmt: skip
    assert result.exit_code == 0 and result.stderr == ""
    rows = parse_csv(result.stdout)
    assert len(rows) == 8 and all(row["status"] == "ok" for row in rows)
    saved = sorted(crops.glob("*.png"))
    assert len(saved) == 8
    # The saved crops are what the model saw: scored again as aligned crops, each gives its
    # row's quality (crop names carry the input's stem).
    rescored = parse_csv(
        run_score("--model", random_onnx_model, "--detector", "none", crops).stdout
    )
    by_stem = {Path(row["path"]).stem: row["quality"] for row in rows}
    for row in rescored:
        stem = Path(row["path"]).stem.rsplit("_", 2)[0]
        assert row["quality"] == pytest.approx(by_stem[stem], abs=1e-5)


def test_fail_under_gates_the_exit_code(random_onnx_model: Path, faces_dir: Path) -> None:
    rows = parse_csv(run_score("--model", random_onnx_model, faces_dir).stdout)
    qualities = [row["quality"] for row in rows]
    low, high = min(qualities), max(qualities)
    passing = run_score("--model", random_onnx_model, "--fail-under", low, faces_dir)
    assert passing.exit_code == 0
    failing = run_score("--model", random_onnx_model, "--fail-under", high + 1, faces_dir)
    assert failing.exit_code == 3
    assert parse_csv(failing.stdout) == rows  # the rows are still written


def _group_photo() -> Path:
    return next(path for path in sample_photos() if path.name == "t1.jpg")


def test_fail_under_with_faces_all_takes_the_best_face(random_onnx_model: Path) -> None:
    common = ["--model", random_onnx_model, "--faces", "all", "--detector", "mtcnn"]
    rows = parse_csv(run_score(*common, _group_photo()).stdout)
    qualities = [row["quality"] for row in rows]
    assert len(qualities) == 6 and min(qualities) < max(qualities)
    # Only the best face must reach the bar; the worst ones do not.
    assert run_score(*common, "--fail-under", max(qualities), _group_photo()).exit_code == 0
    above = max(qualities) + 1e-3
    assert run_score(*common, "--fail-under", above, _group_photo()).exit_code == 3


def test_fail_under_counts_resumed_rows(random_onnx_model: Path, tmp_path: Path) -> None:
    """Inputs answered by an earlier run are gated by the best quality in their rows."""
    out = tmp_path / "scores.csv"
    common = ["--model", random_onnx_model, "--faces", "all", "--detector", "mtcnn", "--quiet"]
    assert run_score(*common, "--out", out, _group_photo()).exit_code == 0
    best = max(row["quality"] for row in parse_csv(out.read_text()))
    written = out.read_text()

    def resumed(threshold: float) -> int:
        return run_score(
            *common, "--resume", "--out", out, "--fail-under", threshold, _group_photo()
        ).exit_code

    assert resumed(best) == 0
    assert resumed(best + 1e-3) == 3
    assert out.read_text() == written  # nothing was scored again


def test_fail_under_counts_inputs_without_a_face(random_onnx_model: Path, tmp_path) -> None:
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((100, 100, 3), 90, np.uint8))
    result = run_score("--model", random_onnx_model, "--fail-under", -1e9, blank)
    assert result.exit_code == 3


def test_fatal_errors_exit_1_with_a_reason(
    random_onnx_model: Path, faces_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    photo = next(faces_dir.glob("*.jpg"))
    missing_default = tmp_path / "not_installed.onnx"
    monkeypatch.setattr("fiqa_cli.runtime.build.default_model_path", lambda: missing_default)
    result = run_score(photo)
    assert result.exit_code == 1 and "--model" in result.stderr
    assert str(missing_default) in result.stderr

    not_onnx = tmp_path / "model.onnx"
    not_onnx.write_text("definitely not a protobuf")
    result = run_score("--model", not_onnx, photo)
    assert result.exit_code == 1 and str(not_onnx) in result.stderr
    assert "'input'" in result.stderr and "'quality'" in result.stderr

    wrong_graph = find_weights_dir() / "pnet.onnx"
    result = run_score("--model", wrong_graph, photo)
    assert result.exit_code == 1 and "pnet.onnx" in result.stderr
    assert "found inputs ['input_1']" in result.stderr

    result = run_score("--model", random_onnx_model, "--out", tmp_path / "no" / "x.csv", photo)
    assert result.exit_code == 1 and "cannot write" in result.stderr

    result = run_score("--model", random_onnx_model, "--detector", "scrfd", photo)
    assert result.exit_code == 1 and "no SCRFD model found" in result.stderr


def test_gpu_request_without_its_provider_is_fatal_with_the_fix(
    missing_gpu_device: tuple[str, str], random_onnx_model, faces_dir
) -> None:
    device, fix = missing_gpu_device
    result = run_score("--model", random_onnx_model, "--device", device, faces_dir)
    assert result.exit_code == 1 and result.stdout == ""
    assert fix in result.stderr


def test_auto_device_says_once_that_a_gpu_build_fell_back_to_cpu(
    random_onnx_model, faces_dir, monkeypatch
) -> None:
    ort = pytest.importorskip("onnxruntime")
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has CUDA; there is no fallback to show")
    photo = next(faces_dir.glob("*.jpg"))
    # A CPU-only onnxruntime runs on the CPU as asked: nothing to say on every run.
    quiet = run_score("--model", random_onnx_model, "--device", "auto", photo)
    assert quiet.exit_code == 0 and "running on CPU" not in quiet.stderr
    # A GPU build that offers CUDA but cannot load it falls back, and says so once.
    monkeypatch.setattr(
        "fiqa_cli.runtime.providers.ort.get_available_providers",
        lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"],
    )
    fallback = run_score("--model", random_onnx_model, "--device", "auto", photo)
    assert fallback.exit_code == 0 and fallback.stderr.count("running on CPU") == 1
    cpu = run_score("--model", random_onnx_model, "--device", "cpu", photo)
    assert "running on CPU" not in cpu.stderr


def test_usage_errors_exit_2(random_onnx_model: Path, faces_dir: Path) -> None:
    assert run_score().exit_code == 2
    assert run_score("--faces", "some", faces_dir).exit_code == 2
    assert run_score("--batch-size", 0, faces_dir).exit_code == 2
    assert run_score("--workers", 0, faces_dir).exit_code == 2
    bad_option = run_score("--cuda-option", "device_id", faces_dir)
    assert bad_option.exit_code == 2 and "KEY=VALUE" in bad_option.stderr
    stray_option = run_score("--tensorrt-option", "trt_fp16_enable=True", faces_dir)
    assert stray_option.exit_code == 2 and "--device tensorrt" in stray_option.stderr
    resume_to_stdout = run_score("--model", random_onnx_model, "--resume", faces_dir)
    assert resume_to_stdout.exit_code == 2 and "--out" in resume_to_stdout.stderr


def test_environment_variables_choose_model_and_detector(
    random_onnx_model: Path, faces_dir: Path, monkeypatch
) -> None:
    monkeypatch.setenv("FIQA_MODEL", str(random_onnx_model))
    monkeypatch.setenv("FIQA_DETECTOR", "none")
    result = run_score(next(faces_dir.glob("*.jpg")))
    assert result.exit_code == 0
    assert "resized" in parse_csv(result.stdout)[0]["message"]


def test_stdin_paths_in_process(random_onnx_model: Path, faces_dir: Path) -> None:
    photos = sorted(str(path) for path in faces_dir.rglob("*.jp*g"))[:3]
    result = run_score("--model", random_onnx_model, "-", stdin="\n".join(photos) + "\n\n")
    assert [row["path"] for row in parse_csv(result.stdout)] == photos


def _score_process(*args: object) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "fiqa_cli", "score", *map(str, args)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )


def _read_line(process: subprocess.Popen) -> str:
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    if not selector.select(timeout=STREAM_TIMEOUT_S):
        process.kill()
        pytest.fail(f"no row within {STREAM_TIMEOUT_S}s: the input was not answered")
    return process.stdout.readline()


def test_stdin_answers_each_path_before_the_next(random_onnx_model: Path, faces_dir) -> None:
    photos = sorted(str(path) for path in faces_dir.rglob("*.jp*g"))[:3]
    process = _score_process("--model", random_onnx_model, "--format", "jsonl", "-")
    try:
        for photo in photos:
            process.stdin.write(photo + "\n")
            process.stdin.flush()
            row = json.loads(_read_line(process))
            assert row["path"] == photo and row["status"] == "ok"
        process.stdin.close()
        assert process.wait(timeout=STREAM_TIMEOUT_S) == 0
    finally:
        process.kill()


def test_resume_after_a_killed_run(
    random_onnx_model: Path, lfw_images: Path, tmp_path: Path
) -> None:
    photos = [str(path) for path in sorted(lfw_images.glob("*/*_0002.jpg"))[:12]]
    out = tmp_path / "scores.csv"
    # Fed through stdin, the run is killed at a known point: after five answered inputs.
    process = _score_process("--model", random_onnx_model, "--out", out, "-")
    for photo in photos[:5]:
        process.stdin.write(photo + "\n")
    process.stdin.flush()
    deadline = time.monotonic() + STREAM_TIMEOUT_S
    while time.monotonic() < deadline and (not out.exists() or out.read_text().count("\n") < 6):
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert out.read_text().count("\n") == 6  # header and five rows
    with out.open("a") as stream:  # the sixth input's row, cut off mid-write
        stream.write(f"{photos[5]},0,1.23")

    stdin = "\n".join(photos) + "\n"
    result = run_score("--model", random_onnx_model, "--resume", "--out", out, "-", stdin=stdin)
    assert result.exit_code == 0, result.stderr
    rows = parse_csv(out.read_text(encoding="utf-8"))
    assert [row["path"] for row in rows] == photos  # no duplicate, none missing, in order
    assert all(row["status"] == "ok" for row in rows)


def test_ctrl_c_keeps_the_rows_of_a_parquet_output(
    random_onnx_model: Path, lfw_images: Path, tmp_path: Path
) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    photos = [str(path) for path in sorted(lfw_images.glob("*/*_0002.jpg"))[:3]]
    out, crops = tmp_path / "scores.parquet", tmp_path / "crops"
    process = _score_process("--model", random_onnx_model, "--save-crops", crops, "--out", out, "-")
    for photo in photos:
        process.stdin.write(photo + "\n")
    process.stdin.flush()
    # Stdin's inputs are answered one at a time: the third one's crop means the first two
    # inputs' rows were given to the writer (a Parquet output shows nothing before it ends).
    deadline = time.monotonic() + STREAM_TIMEOUT_S
    while time.monotonic() < deadline and len(list(crops.glob("*"))) < 3:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=STREAM_TIMEOUT_S) == 130
    written = [row["path"] for row in pq.read_table(out).to_pylist()]
    assert len(written) >= 2 and written == photos[: len(written)]


def test_resume_jsonl_skips_answered_inputs(
    random_onnx_model: Path, faces_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "scores.jsonl"
    photos = sorted(str(path) for path in faces_dir.rglob("*.jp*g"))
    assert run_score("--model", random_onnx_model, "--out", out, *photos[:3]).exit_code == 0
    first = out.read_text(encoding="utf-8")
    out.write_text(first + '{"path": "half a ro', encoding="utf-8")
    resumed = run_score("--model", random_onnx_model, "--resume", "--out", out, *photos)
    assert resumed.exit_code == 0, resumed.stderr
    rows = parse_jsonl(out.read_text(encoding="utf-8"))
    assert [row["path"] for row in rows] == photos
    assert out.read_text(encoding="utf-8").startswith(first)


@pytest.mark.parametrize("suffix", ["csv", "jsonl"])
def test_resume_refuses_a_file_of_another_column_layout(
    random_onnx_model: Path, faces_dir: Path, tmp_path: Path, suffix: str
) -> None:
    out = tmp_path / f"scores.{suffix}"
    photos = sorted(str(path) for path in faces_dir.rglob("*.jp*g"))
    assert run_score("--model", random_onnx_model, "--out", out, *photos[:2]).exit_code == 0
    written = out.read_bytes()
    mixed = run_score("--model", random_onnx_model, "--resume", "--measures", "--out", out, *photos)
    assert mixed.exit_code == 1 and "columns of another run" in mixed.output
    assert out.read_bytes() == written
    same = run_score("--model", random_onnx_model, "--resume", "--out", out, *photos)
    assert same.exit_code == 0, same.output


@pytest.mark.parametrize("workers", [1, 3])
def test_batching_and_workers_do_not_change_scores(
    random_onnx_model: Path, faces_dir: Path, workers: int
) -> None:
    one_batch = parse_csv(run_score("--model", random_onnx_model, faces_dir).stdout)
    small_batches = parse_csv(
        run_score(
            "--model", random_onnx_model, "--batch-size", 3, "--workers", workers, faces_dir
        ).stdout
    )
    assert [row["path"] for row in small_batches] == [row["path"] for row in one_batch]
    for first, second in zip(one_batch, small_batches, strict=True):
        assert first["quality"] == pytest.approx(second["quality"], rel=1e-4, abs=1e-3)


def test_shards_cover_every_input_once(random_onnx_model: Path, tmp_path: Path) -> None:
    for n in range(12):
        cv2.imwrite(str(tmp_path / f"crop{n:02d}.png"), np.full((112, 112, 3), 10 * n, np.uint8))
    common = [tmp_path, "--detector", "none", "--model", random_onnx_model, "--quiet"]
    everything = run_score(*common)
    assert everything.exit_code == 0, everything.output
    shards = []
    for k in (1, 2, 3):
        result = run_score(*common, "--shard", f"{k}/3")
        assert result.exit_code == 0, result.output
        shards.append(list(csv.DictReader(io.StringIO(result.output))))
    rows = sorted((row for shard in shards for row in shard), key=lambda row: row["path"])
    assert rows == list(csv.DictReader(io.StringIO(everything.output)))
    assert run_score(*common, "--shard", "4/3").exit_code == 2


def test_progress_bar_on_a_terminal_streams_rows(random_onnx_model: Path, tmp_path: Path) -> None:
    """With stderr on a terminal (a pseudo-terminal here) the progress line is drawn and the
    run ends with its summary, and each input's row is written before the scorer reads the next
    input: only the background count (another thread) lists the inputs, and holds none."""
    import pty

    crops = []
    for index in range(3):
        crops.append(tmp_path / f"crop{index}.png")
        cv2.imwrite(str(crops[-1]), np.full((112, 112, 3), 60 * index, np.uint8))
    out = str(tmp_path / "out.csv")
    arguments = ["score", *map(str, crops), "--model", str(random_onnx_model), "--detector", "none",
                 "--batch-size", "1", "--workers", "1", "--out", out]  # fmt: skip
    program = """
import sys, threading
import fiqa_cli.commands.score as score
from fiqa_cli.runtime.rows import RowWriter
from fiqa_cli.cli import main
log = []
def inputs(arguments, stdin):
    for item in real_expand(arguments, stdin):
        if threading.current_thread() is threading.main_thread():
            log.append("read " + item.path[-5])
        yield item
real_expand, score.expand_inputs = score.expand_inputs, inputs
real_write = RowWriter.write_input
def write(self, rows):
    log.append("write " + rows[0].path[-5])
    real_write(self, rows)
RowWriter.write_input = write
try:
    main(ARGUMENTS)
except SystemExit:
    pass
print(" ".join(log))
""".replace("ARGUMENTS", repr(arguments))
    leader, follower = pty.openpty()
    done = subprocess.run(
        [sys.executable, "-c", program], stderr=follower, stdout=subprocess.PIPE, text=True
    )
    os.close(follower)
    terminal = os.read(leader, 65536).decode(errors="replace")
    os.close(leader)
    assert done.returncode == 0
    assert "scoring: 1" in terminal, terminal
    assert "fiqa: 3 inputs: 3 faces scored, 0 no face, 0 unreadable, 0 errors;" in terminal
    assert done.stdout.split("\n")[0].split(" ") == [
        "read", "0", "write", "0", "read", "1", "write", "1", "read", "2", "write", "2",
    ]  # fmt: skip


def test_landmarks_are_in_the_frame_of_the_box(lfw_images: Path, tmp_path: Path) -> None:
    """--landmarks: five x, y pairs after the other columns, in the decoded (EXIF-rotated) image
    like the box; the eyes above the mouth there; empty with --detector none."""
    source = sorted(lfw_images.glob("*/*_0001.jpg"))[0]
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned 90 degrees counter-clockwise: decoded upright
    rotated = tmp_path / "rotated.jpg"
    Image.open(source).rotate(90, expand=True).save(rotated, quality=95, exif=exif.tobytes())
    out = tmp_path / "rows.jsonl"
    result = run_score(rotated, "--landmarks", "--measures", "--out", out)
    assert result.exit_code == 0, result.output
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    names = list(row)
    assert names[-10:] == [
        f"{point}_{axis}"
        for point in ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
        for axis in "xy"
    ]
    points = np.array([row[name] for name in names[-10:]]).reshape(5, 2)
    assert ((points >= [row["x1"], row["y1"]]) & (points <= [row["x2"], row["y2"]])).all()
    eyes, mouth = points[:2, 1].mean(), points[3:, 1].mean()
    assert eyes < mouth - 20  # upright: the EXIF rotation was applied before detection
    crop = tmp_path / "crop.png"
    cv2.imwrite(str(crop), np.full((112, 112, 3), 100, np.uint8))
    none = run_score(crop, "--landmarks", "--detector", "none", "--format", "jsonl")
    (row,) = [json.loads(line) for line in none.stdout.splitlines()]
    assert all(row[name] is None for name in names[-10:])
