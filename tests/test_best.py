"""`fiqa best` (issue 17): bursts and videos made from one LFW photo, scored by the embedded
default model with the MTCNN detector (always available offline)."""

from __future__ import annotations

import csv
import io
import os
import struct
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

# MTCNN whatever the machine holds: no SCRFD model in insightface's root, no FIQA_* overrides.
from test_score_cli import hermetic_environment  # noqa: F401 (an autouse fixture)

from fiqa_cli.cli import main
from fiqa_cli.runtime.best_shot import BEST_COLUMNS
from fiqa_cli.runtime.faces import CUT_OFF_MESSAGE, NO_FACE_MESSAGE
from fiqa_cli.runtime.frames import Sampling, groups_from_arguments, video_frames

PHOTO = "AJ_Cook/AJ_Cook_0001.jpg"  # one face, near the centre
FPS = 10.0
# Shifting the photo this far left puts the left eye outside the frame (MTCNN still finds the
# face, its landmarks extrapolated past the border): a face cut off.
CUT_SHIFT = 112


@pytest.fixture(scope="module")
def photo(lfw_images: Path) -> np.ndarray:
    return cv2.imread(str(lfw_images / PHOTO))


def blurred(image: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(image, (0, 0), sigma)


def darkened(image: np.ndarray) -> np.ndarray:
    return (image * 0.2).astype(np.uint8)


def cut_off(image: np.ndarray) -> np.ndarray:
    shifted = np.zeros_like(image)
    shifted[:, : image.shape[1] - CUT_SHIFT] = image[:, CUT_SHIFT:]
    return shifted


def burst(folder: Path, frames: list[np.ndarray]) -> Path:
    folder.mkdir(parents=True)
    for index, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"frame_{index:02d}.png"), frame)
    return folder


def write_video(path: Path, frames: list[np.ndarray]) -> Path:
    """An MJPG AVI (this OpenCV build writes both MJPG and mp4v; MJPG keeps frames sharp)."""
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (width, height))
    assert writer.isOpened()
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def run_best(*args: object, stdin: str | None = None):
    result = CliRunner().invoke(main, ["best", "--quiet", *map(str, args)], input=stdin)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def rows_of(output: str) -> list[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(output))
    assert tuple(reader.fieldnames) == BEST_COLUMNS
    return list(reader)


def test_the_sharp_frame_of_a_burst_wins(photo: np.ndarray, tmp_path: Path) -> None:
    frames = [blurred(photo, 3), darkened(photo), photo, cut_off(photo), blurred(photo, 5)]
    folder = burst(tmp_path / "burst", frames)
    result = run_best(folder, "--top", 5, "--save", tmp_path / "saved")
    assert result.exit_code == 0, result.output
    rows = rows_of(result.output)
    # The cut-off frame is gated out; the rest ranked by quality, the sharp one first.
    assert [row["frame"] for row in rows][0] == "2"
    assert rows[0]["path"] == str(folder / "frame_02.png")
    assert "3" not in [row["frame"] for row in rows]
    assert [row["rank"] for row in rows] == ["1", "2", "3", "4"]
    assert all(row["status"] == "ok" for row in rows)
    qualities = [float(row["quality"]) for row in rows]
    assert qualities == sorted(qualities, reverse=True)
    saved = sorted(path.name for path in (tmp_path / "saved").iterdir())
    assert len(saved) == 8  # each kept frame and its aligned crop
    crop = cv2.imread(str(next((tmp_path / "saved").glob("*rank1_frame2_face.png"))))
    assert crop.shape == (112, 112, 3)


def test_the_sharp_video_frame_comes_back_with_its_timestamp(
    photo: np.ndarray, tmp_path: Path
) -> None:
    frames = [blurred(photo, 4)] * 6 + [photo] + [darkened(photo)] * 3 + [cut_off(photo)] * 2
    video = write_video(tmp_path / "clip.avi", frames)
    result = run_best(video, "--save", tmp_path / "saved")
    assert result.exit_code == 0, result.output
    (row,) = rows_of(result.output)
    assert (row["group"], row["path"], row["frame"]) == (str(video), str(video), "6")
    assert float(row["timestamp_ms"]) == pytest.approx(600.0)
    saved = cv2.imread(str(next((tmp_path / "saved").glob("*rank1_frame6.png"))))
    assert saved.shape == photo.shape


def test_top_k_frames_keep_the_minimum_gap(photo: np.ndarray, tmp_path: Path) -> None:
    # Sharp frames at 0-200 ms and at 800 ms; blurred ones between.
    frames = [photo] * 3 + [blurred(photo, 4)] * 5 + [photo] + [blurred(photo, 4)]
    video = write_video(tmp_path / "clip.avi", frames)
    rows = rows_of(run_best(video, "--top", 2, "--min-gap-ms", 500).output)
    times = [float(row["timestamp_ms"]) for row in rows]
    assert len(times) == 2 and abs(times[0] - times[1]) >= 500


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ((), list(range(20))),
        (("--stride", 3), [0, 3, 6, 9, 12, 15, 18]),
        (("--fps", 2.5), [0, 4, 8, 12, 16]),
        (("--start", 1.0, "--end", 1.5), [10, 11, 12, 13, 14]),
        (("--start", 0.5, "--stride", 4), [5, 9, 13, 17]),
    ],
)
def test_sampling_takes_the_frames_it_says(
    photo: np.ndarray, tmp_path: Path, options: tuple, expected: list[int]
) -> None:
    video = write_video(tmp_path / "clip.avi", [photo] * 20)
    sampled = [frame.ref for frame in video_frames(str(video), _sampling(*options))]
    assert [ref.index for ref in sampled] == expected
    assert [ref.timestamp_ms for ref in sampled] == pytest.approx([i * 100.0 for i in expected])


def _sampling(*options: object) -> Sampling:
    names = {"--stride": "stride", "--fps": "fps", "--start": "start_s", "--end": "end_s"}
    return Sampling(**{names[options[i]]: options[i + 1] for i in range(0, len(options), 2)})


def test_stride_through_the_command(photo: np.ndarray, tmp_path: Path) -> None:
    video = write_video(tmp_path / "clip.avi", [photo] * 12)
    rows = rows_of(run_best(video, "--stride", 5, "--top", 12).output)
    assert sorted(int(row["frame"]) for row in rows) == [0, 5, 10]


def test_a_group_of_bad_frames_exits_3_with_its_reason(photo: np.ndarray, tmp_path: Path) -> None:
    good = burst(tmp_path / "good", [photo])
    blank = np.full_like(photo, 128)
    two_faces = np.hstack([photo, photo])
    bad = burst(tmp_path / "bad", [blank, cut_off(photo)])
    result = run_best(good, bad)
    assert result.exit_code == 3
    good_row, bad_row = rows_of(result.output)
    assert good_row["status"] == "ok"
    assert bad_row["status"] == "no_acceptable_frame"
    assert bad_row["group"] == str(bad) and bad_row["rank"] == ""
    # Neither frame is scored; the one with a face found stands for the group.
    assert bad_row["frame"] == "1" and bad_row["message"] == CUT_OFF_MESSAGE
    blank_only = burst(tmp_path / "blank", [blank])
    (blank_row,) = rows_of(run_best(blank_only).output)
    assert blank_row["message"] == NO_FACE_MESSAGE
    # Two faces: scored, so it ranks above an unscored cut-off frame, and says why it is out.
    (two_row,) = rows_of(run_best(burst(tmp_path / "two", [cut_off(photo), two_faces])).output)
    assert two_row["frame"] == "1"
    assert two_row["message"] == "2 faces detected; exactly one is needed"


def test_min_quality_rejects_with_the_score(photo: np.ndarray, tmp_path: Path) -> None:
    folder = burst(tmp_path / "burst", [blurred(photo, 5), darkened(photo)])
    result = run_best(folder, "--min-quality", 0.99)
    assert result.exit_code == 3
    (row,) = rows_of(result.output)
    assert row["message"].startswith("quality ") and "below --min-quality 0.99" in row["message"]
    assert row["frame"] == "0"  # the better of the two rejected frames


def test_stdin_is_one_group_per_line_and_empty_inputs_are_rows(
    photo: np.ndarray, tmp_path: Path
) -> None:
    first = burst(tmp_path / "first", [blurred(photo, 4), photo])
    second = write_video(tmp_path / "second.avi", [photo, blurred(photo, 4)])
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_best("-", stdin=f"{first}\n{second}\n{empty}\n")
    assert result.exit_code == 3
    rows = rows_of(result.output)
    assert [(row["group"], row["frame"]) for row in rows] == [
        (str(first), "1"),
        (str(second), "0"),
        (str(empty), ""),
    ]
    assert rows[2]["status"] == "no_acceptable_frame"
    assert rows[2]["message"].startswith("no image or video files")


def test_a_corrupt_video_is_a_row(tmp_path: Path) -> None:
    video = tmp_path / "broken.mp4"
    video.write_bytes(b"not a video at all")
    result = run_best(video)
    assert result.exit_code == 3
    (row,) = rows_of(result.output)
    assert row["status"] == "no_acceptable_frame"
    assert "cannot open as a video" in row["message"]


def test_fps_and_stride_together_is_a_usage_error(tmp_path: Path) -> None:
    assert run_best(tmp_path, "--fps", 2, "--stride", 2).exit_code == 2


def _with_rotation_90(video: Path) -> None:
    """Set the display matrix of the video's track header to a 90 degree rotation, as phones
    write portrait video (the pixels stay landscape)."""
    data = bytearray(video.read_bytes())
    header = data.find(b"tkhd")
    assert header > 0 and data[header + 4] == 0  # a version-0 track header
    # type, version+flags, 5 x 32-bit times/ids, 8 reserved, layer, group, volume, reserved
    matrix = header + 4 + 4 + 20 + 8 + 8
    struct.pack_into(">9i", data, matrix, 0, 1 << 16, 0, -(1 << 16), 0, 0, 0, 0, 1 << 30)
    video.write_bytes(bytes(data))


def test_video_rotation_metadata_is_honoured(photo: np.ndarray, tmp_path: Path) -> None:
    stored = cv2.rotate(photo[:, :200], cv2.ROTATE_90_COUNTERCLOCKWISE)  # 200 wide, 250 high
    video = tmp_path / "portrait.mp4"
    height, width = stored.shape[:2]
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (width, height))
    for _ in range(3):
        writer.write(stored)
    writer.release()
    _with_rotation_90(video)
    (frame, *_) = video_frames(str(video), Sampling())
    assert frame.image.shape == (250, 200, 3)
    error = np.abs(frame.image.astype(float) - photo[:, :200]).mean()
    assert error < 10  # upright as shot, up to mp4v compression
    (row,) = rows_of(run_best(video).output)
    assert row["status"] == "ok"


def test_group_by_video_folder_and_none(photo: np.ndarray, tmp_path: Path) -> None:
    session = tmp_path / "session"
    burst(session / "burst", [photo, photo])
    first = write_video(session / "a.avi", [photo])
    second = write_video(session / "b.avi", [photo])
    loose = tmp_path / "loose.png"
    cv2.imwrite(str(loose), photo)
    arguments = [str(session), str(loose)]

    def grouped(group_by: str) -> dict[str, int]:
        return {g.name: len(g.sources) for g in groups_from_arguments(arguments, group_by)}

    assert grouped("video") == {
        str(first): 1,
        str(second): 1,
        str(session / "burst"): 2,
        str(tmp_path): 1,
    }
    assert grouped("folder") == {str(session): 2, str(session / "burst"): 2, str(tmp_path): 1}
    assert grouped("none") == {"all": 5}
    (missing,) = groups_from_arguments([str(tmp_path / "nowhere")], "video")
    assert missing.problem == "not found" and missing.sources == ()


def test_a_symlink_cycle_in_a_burst_folder_is_entered_once(
    photo: np.ndarray, tmp_path: Path
) -> None:
    folder = burst(tmp_path / "burst", [photo])
    (folder / "loop").symlink_to(folder)
    (group,) = groups_from_arguments([str(folder)], "video")
    assert group.sources == (str(folder / "frame_00.png"),)


def test_a_profile_gates_the_frames(photo: np.ndarray, tmp_path: Path) -> None:
    """With --profile/--require a frame must also meet the requirements: an unmeetable one
    leaves the group without an acceptable frame, with the requirement's reason."""
    folder = burst(tmp_path / "burst", [photo, blurred(photo, 3)])
    loose = run_best(folder, "--require", "inter_eye_distance=1..")
    assert loose.exit_code == 0, loose.output
    (kept,) = rows_of(loose.output)
    assert kept["status"] == "ok" and kept["frame"] == "0"
    strict = run_best(folder, "--require", "inter_eye_distance=10000..")
    assert strict.exit_code == 3
    (refused,) = rows_of(strict.output)
    assert refused["status"] == "no_acceptable_frame"
    assert "apart" in refused["message"] and "10000" in refused["message"]


def test_stdin_names_that_are_not_utf8_keep_their_bytes(photo: np.ndarray, tmp_path: Path) -> None:
    folder = os.fsencode(tmp_path) + b"/caf\xe9"
    os.mkdir(folder)
    # Written as bytes: OpenCV's own file functions cannot take such a name.
    Path(os.fsdecode(folder + b"/frame_00.png")).write_bytes(cv2.imencode(".png", photo)[1])
    result = run_best("-", stdin=folder + b"\n")
    assert result.exit_code == 0, result.output
    (row,) = rows_of(result.output)
    assert row["status"] == "ok" and row["frame"] == "0"


def test_a_folder_too_deep_to_list_is_a_row_and_the_others_keep_theirs(
    random_onnx_model: Path, photo: np.ndarray, tmp_path: Path
) -> None:
    """Issue 30: a subfolder whose path is over the OS's 4,096-byte limit ended the run."""
    from limited_run import run_fiqa

    root = tmp_path / "sessions"
    burst(root / "good", [photo])
    descriptor = os.open(root, os.O_RDONLY)
    for _ in range(25):  # 25 x 200 characters: made one level at a time, relative to the last
        os.mkdir("d" * 200, dir_fd=descriptor)
        inner = os.open("d" * 200, os.O_RDONLY, dir_fd=descriptor)
        os.close(descriptor)
        descriptor = inner
    os.close(descriptor)
    args = ["best", "--model", random_onnx_model, "--device", "cpu", "--detector", "mtcnn"]
    done = run_fiqa([*args, "-q", root])
    assert done.returncode == 3, done.stderr  # the deep folder has no acceptable frame
    rows = list(csv.DictReader(io.StringIO(done.stdout.decode())))
    assert [row["status"] for row in rows] == ["ok", "no_acceptable_frame"]
    assert "cannot list folder: File name too long" in rows[1]["message"]


# Issue 30, cases 4, 5 and 7: `fiqa best` is bounded in time and memory like `fiqa score`.


def _best_child(*args: object, stdin: bytes | None = None, timeout: float = 120):
    from limited_run import run_fiqa

    base = ["best", "--device", "cpu", "--detector", "mtcnn", "-q"]
    return run_fiqa([*base, *args], stdin=stdin, timeout=timeout)


def test_an_fps_beyond_any_video_is_a_usage_error_and_a_high_one_takes_every_frame(
    random_onnx_model: Path, photo: np.ndarray, tmp_path: Path
) -> None:
    clip = write_video(tmp_path / "clip.avi", [photo] * 5)
    for fps in ("1e9", "1e20"):
        done = _best_child("--model", random_onnx_model, clip, "--fps", fps, timeout=60)
        assert done.returncode == 2 and b"--fps" in done.stderr, done.stderr
    # the sampler itself, past the option's check: every frame, at once, however high
    code = (
        "import sys; from fiqa_cli.runtime.frames import Sampling, video_frames\n"
        "frames = list(video_frames(sys.argv[1], Sampling(fps=1e20)))\n"
        "print([frame.ref.index for frame in frames])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(clip)], capture_output=True, timeout=60, check=True
    )
    assert done.stdout.decode().strip() == "[0, 1, 2, 3, 4]"
    done = _best_child("--model", random_onnx_model, clip, "--fps", 1000, "--top", 5)
    assert done.returncode == 0, done.stderr
    assert len(list(csv.DictReader(io.StringIO(done.stdout.decode())))) == 5


def test_an_endless_stdin_line_is_one_group_row(random_onnx_model: Path, tmp_path) -> None:
    done = _best_child("--model", random_onnx_model, "-", stdin=b"\0" * 10_000_000)
    assert done.returncode == 3, done.stderr
    (row,) = csv.DictReader(io.StringIO(done.stdout.decode()))
    assert row["status"] == "no_acceptable_frame" and "longer than" in row["message"], row


def test_video_frames_over_the_pixel_budget_are_refused(random_onnx_model, tmp_path) -> None:
    clip = tmp_path / "huge.avi"
    code = (
        "import sys, cv2, numpy as np\n"
        "mjpg = cv2.VideoWriter_fourcc(*'MJPG')\n"
        "writer = cv2.VideoWriter(sys.argv[1], mjpg, 10, (11000, 11000))\n"
        "writer.write(np.zeros((11000, 11000, 3), np.uint8)); writer.release()\n"
    )
    subprocess.run([sys.executable, "-c", code, str(clip)], timeout=120, check=True)
    done = _best_child("--model", random_onnx_model, clip)
    assert done.returncode == 3, done.stderr
    (row,) = csv.DictReader(io.StringIO(done.stdout.decode()))
    assert "11000x11000" in row["message"] and "pixel budget" in row["message"], row
