"""The Python API (`from fiqa import Scorer`): the rows `fiqa score` writes, from Python."""

from __future__ import annotations

import logging
import shutil
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from fiqa import FaceScore, FiqaError, Scorer
from fiqa_cli.api import ARRAY_PATH
from fiqa_cli.cli import main
from fiqa_cli.runtime.rows import read_rows


@pytest.fixture(scope="module")
def photo_folder(lfw_images: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five LFW photos, one with two people, a grey image with no face and a corrupt file."""
    folder = tmp_path_factory.mktemp("api-photos")
    for source in sorted(lfw_images.glob("*/*_0001.jpg"))[:5]:
        shutil.copy(source, folder / source.name)
    cv2.imwrite(str(folder / "grey.png"), np.full((200, 200, 3), 128, np.uint8))
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    return folder


@pytest.fixture(scope="module")
def scorer() -> Scorer:
    return Scorer(device="cpu", faces="all")


def cli_rows(tmp_path: Path, *args: object) -> list[dict[str, object]]:
    out = tmp_path / "cli.jsonl"  # JSONL keeps the measure columns typed, as the API does
    result = CliRunner().invoke(
        main, ["score", *map(str, args), "--out", str(out), "--device", "cpu", "--quiet"]
    )
    assert result.exit_code in (0, 3), result.output
    return read_rows(out, other_columns=True)


@pytest.mark.parametrize(
    "options", [{}, {"measures": True}, {"profile": "capture", "landmarks": True}]
)
def test_rows_equal_the_commands_rows(photo_folder: Path, tmp_path: Path, options) -> None:
    flags = ["--measures"] if options.get("measures") else []
    flags += ["--profile", options["profile"]] if "profile" in options else []
    flags += ["--landmarks"] if options.get("landmarks") else []
    expected = cli_rows(tmp_path, photo_folder, "--faces", "all", *flags)
    rows = Scorer(device="cpu", faces="all", **options).score(photo_folder)
    assert [row.as_dict() for row in rows] == expected
    assert {row.status for row in rows} == {"ok", "no_face", "unreadable"}


def test_one_path_a_list_and_an_array(photo_folder: Path, scorer: Scorer) -> None:
    photos = sorted(photo_folder.glob("*.jpg"))
    one = scorer.score(photos[0])
    assert one and all(isinstance(row, FaceScore) for row in one)
    assert one[0].path == str(photos[0]) and one[0].status == "ok"
    listed = scorer.score([str(photos[0]), photos[1]])
    assert listed[: len(one)] == one
    assert [row.path for row in listed[len(one) :]] == [str(photos[1])] * (len(listed) - len(one))
    # A decoded image scores as its file does; its rows carry ARRAY_PATH as their path.
    from_array = scorer.score(cv2.imread(str(photos[0])))
    assert [row.path for row in from_array] == [ARRAY_PATH] * len(one)
    assert [row.quality for row in from_array] == [row.quality for row in one]
    per_input = list(scorer.iter_scores([photos[0], cv2.imread(str(photos[1]))]))
    assert len(per_input) == 2 and per_input[0] == one


def test_one_scorer_shared_between_threads(photo_folder: Path, scorer: Scorer) -> None:
    photos = sorted(photo_folder.glob("*.jpg"))
    expected = {photo: scorer.score(photo) for photo in photos}
    found: dict[Path, list[FaceScore]] = {}

    def score_all(order: list[Path]) -> None:
        for _ in range(3):
            for photo in order:
                rows = scorer.score(photo)
                assert rows == expected[photo]
                found[photo] = rows

    threads = [
        threading.Thread(target=score_all, args=(order,)) for order in (photos, photos[::-1])
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert found == expected


def test_notices_go_to_the_fiqa_logger_not_the_terminal(
    lfw_images: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    crop = cv2.resize(cv2.imread(str(sorted(lfw_images.glob("*/*.jpg"))[0])), (100, 100))
    with caplog.at_level(logging.INFO, logger="fiqa"):
        rows = Scorer(detector="none", device="cpu").score(crop)
    assert rows[0].status == "ok" and "resized" in rows[0].message
    assert any("resized" in record.getMessage() for record in caplog.records)
    assert capfd.readouterr() == ("", "")


def test_bad_arguments_raise_fiqa_errors(tmp_path: Path, scorer: Scorer) -> None:
    with pytest.raises(FiqaError, match="BGR image"):
        scorer.score(np.zeros((112, 112), np.float32))
    with pytest.raises(FiqaError, match="not found"):
        Scorer(tmp_path / "missing.onnx")
    # A missing photo is a row, as in `fiqa score`, not an exception.
    (row,) = scorer.score(tmp_path / "missing.jpg")
    assert row.status == "unreadable"


def test_the_readmes_example_runs_as_written(
    lfw_images: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """From a folder holding photo.jpg and photos/, as the README says."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme[readme.index("## Python API") :]
    example = section[section.index("```python\n") + 10 : section.index("```\n", 10)]
    photos = sorted(lfw_images.glob("*/*_0001.jpg"))[:3]
    shutil.copy(photos[0], tmp_path / "photo.jpg")
    (tmp_path / "photos").mkdir()
    for photo in photos[1:]:
        shutil.copy(photo, tmp_path / "photos" / photo.name)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path)
        exec(compile(example, "README.md", "exec"), {})
    printed = capfd.readouterr().out.splitlines()
    assert printed[0].startswith("photo.jpg 0 0.") and printed[0].endswith(" ok")
    assert printed[-1].startswith("2 {'path': 'photos/")
