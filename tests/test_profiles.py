"""Verdicts against requirement profiles, on close-ups built from real LFW photos (issue 16)."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from closeups import booth_closeup, central_face

from fiqa_cli.choices import CPU, LARGEST_FACE
from fiqa_cli.paths import default_model_path
from fiqa_cli.runtime.build import build_face_mesh
from fiqa_cli.runtime.detect import Detector, create_detector
from fiqa_cli.runtime.face_mesh import FaceMesh
from fiqa_cli.runtime.faces import aligned_detected
from fiqa_cli.runtime.measure_kinds import GEOMETRIC, MEASURE_NAMES, Measure
from fiqa_cli.runtime.measures import measure_face
from fiqa_cli.runtime.profiles import (
    BUILT_IN,
    Profile,
    ProfileError,
    Requirement,
    judged,
    load_profile,
    parse_requirement,
)
from fiqa_cli.runtime.quality_model import QualityModel
from fiqa_cli.runtime.rows import COLUMNS, FAIL, MEASURE_COLUMNS, OK, PASS, VERDICT_COLUMNS, Row

# A frontal LFW photo, eyes open, mouth closed: its close-up passes every icao requirement
# with SCRFD 2.5g and the face mesh.
FRONTAL = "Jason_Jennings/Jason_Jennings_0002.jpg"
OTHER = "Abdullah/Abdullah_0001.jpg"
# Passport-like framing: 600x720, face box 60% of the height (IED about 130 px).
ICAO_SIZE, ICAO_FRAMING = (600, 720), 0.6


@pytest.fixture(scope="module")
def scrfd_model(shared_dir: Path) -> Path:
    return shared_dir / "models" / "scrfd_2.5g_bnkps.onnx"


@pytest.fixture(scope="module")
def detector(scrfd_model: Path) -> Detector:
    return create_detector("scrfd", scrfd_model)


@pytest.fixture(scope="module")
def closeup(lfw_images: Path, detector: Detector) -> np.ndarray:
    image = cv2.imread(str(lfw_images / FRONTAL))
    face = central_face(detector.detect(image), image.shape)
    return booth_closeup(image, face.bbox, ICAO_FRAMING, ICAO_SIZE)[0]


@functools.cache
def face_mesh() -> FaceMesh:
    return build_face_mesh()


@functools.cache
def default_model() -> QualityModel:
    return QualityModel(default_model_path(), [CPU])


def judged_photo(image: np.ndarray, detector: Detector, profile: Profile) -> Row:
    """The photo's row as `fiqa score` judges it: measures (with the face mesh), and
    quality_100 from the embedded (calibrated) model."""
    faces = detector.detect(image)
    found = aligned_detected(image, faces, LARGEST_FACE)[0]
    mesh = face_mesh().mesh(image, found.face)
    measures = measure_face(image, found.face, faces, found.crop, mesh=mesh)
    model = default_model()
    quality = float(model.predict([found.crop])[0])
    row = Row(
        "photo.jpg",
        OK,
        face=found.index,
        quality=quality,
        measures=measures,
        quality_100=model.calibration.score(quality),
    )
    return judged(row, profile)


def geometric_part(profile: Profile) -> Profile:
    kept = {k: r for k, r in profile.requirements.items() if k.removesuffix("_100") in GEOMETRIC}
    return Profile(profile.name, profile.description, kept)


def test_icao_like_closeup_passes_the_geometric_requirements(closeup, detector):
    icao = load_profile("icao")
    assert {"inter_eye_distance", "head_roll", "single_face", "face_centre"} <= set(
        geometric_part(icao).requirements
    )
    row = judged_photo(closeup, detector, geometric_part(icao))
    assert (row.verdict, row.reasons) == (PASS, "")


def test_tilted_head_fails_with_its_angle(closeup, detector):
    height, width = closeup.shape[:2]
    turn = cv2.getRotationMatrix2D((width / 2, height / 2), 15, 1.0)
    tilted = cv2.warpAffine(closeup, turn, (width, height), borderMode=cv2.BORDER_REPLICATE)
    row = judged_photo(tilted, detector, load_profile("icao"))
    assert row.verdict == FAIL
    tilt = next(reason for reason in row.reasons.split("; ") if reason.startswith("head tilted"))
    assert tilt.endswith("(at most 8°)")
    assert abs(int(tilt.split()[2].rstrip("°")) - 15) <= 7  # the measured roll error


def test_small_face_fails_with_its_eye_distance(closeup, detector):
    small = cv2.resize(closeup, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    row = judged_photo(small, detector, load_profile("icao"))
    ied = next(reason for reason in row.reasons.split("; ") if reason.startswith("eyes "))
    assert ied.endswith("px apart (at least 90 px)")
    assert 50 <= int(ied.split()[1]) < 90


def test_two_faces_side_by_side_fail_single_face(lfw_images, closeup, detector):
    other = cv2.imread(str(lfw_images / OTHER))
    face = central_face(detector.detect(other), other.shape)
    other_closeup = booth_closeup(other, face.bbox, ICAO_FRAMING, ICAO_SIZE)[0]
    row = judged_photo(np.hstack([closeup, other_closeup]), detector, load_profile("icao"))
    assert row.verdict == FAIL
    assert "second face in the photo" in row.reasons.split("; ")


def test_under_exposure_trips_the_exposure_requirement(closeup, detector):
    dark = (closeup.astype(np.float32) * 0.2).astype(np.uint8)
    capture = load_profile("capture")
    assert judged_photo(closeup, detector, capture).verdict == PASS
    row = judged_photo(dark, detector, capture)
    assert row.verdict == FAIL
    assert row.reasons.startswith("too dark: score")


def test_rows_without_a_face_get_no_verdict_and_cut_off_faces_fail():
    icao = load_profile("icao")
    assert judged(Row("a.jpg", "no_face", message="no face detected"), icao).verdict is None
    assert judged(Row("b.jpg", "unreadable", message="file not found"), icao).verdict is None
    cut = judged(Row("c.jpg", "no_face", face=0, message="face cut off by the border"), icao)
    assert (cut.verdict, cut.reasons) == (FAIL, "face cut off by the border")


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("head_yaw", 5.3, "head turned 5.3° sideways (at most 5°)"),
        ("head_yaw", -5.04, "head turned 5.04° sideways (at most 5°)"),
        ("head_yaw", 7.6, "head turned 8° sideways (at most 5°)"),
        ("inter_eye_distance", 89.7, "eyes 89.7 px apart (at least 90 px)"),
        ("face_centre", 0.5504, "face right of centre (55.04%; 45% to 55%)"),
        ("eyes_open", 0.0199, "eyes closed (0.0199; at least 0.02)"),
    ],
)
def test_a_failing_value_never_reads_as_within_its_limit(name, value, reason):
    icao = load_profile("icao").with_overrides(["eyes_open=0.02.."])
    row = judged(Row("a.jpg", OK, face=0, measures={name: Measure(value, 50)}), icao)
    assert reason in row.reasons


def test_a_bound_is_written_as_given_not_rounded_to_the_values_decimals():
    """A bound of 0.0333 rounded to 0.03 would read as met by the value shown, 0.03."""
    profile = load_profile("icao").with_overrides(["luminance_variance=0.0333.."])
    measures = {"luminance_variance": Measure(0.031, 50)}
    row = judged(Row("a.jpg", OK, face=0, measures=measures), profile)
    assert "too little contrast on the face (0.03; at least 0.0333)" in row.reasons


def test_unassessed_measure_fails_its_requirement():
    profile = Profile("p", "", {"head_roll": Requirement("head_roll", -8, 8)})
    row = judged(Row("a.jpg", OK, face=0, measures={}), profile)
    assert (row.verdict, row.reasons) == (FAIL, "head roll cannot be assessed")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("head_roll=-8..8", Requirement("head_roll", -8, 8)),
        ("inter_eye_distance=90", Requirement("inter_eye_distance", 90, None)),
        ("sharpness_100=50..", Requirement("sharpness_100", 50, None)),
        ("single_face=..0.2", Requirement("single_face", None, 0.2)),
        ("head_yaw=off", None),
    ],
)
def test_parse_requirement(text, expected):
    assert parse_requirement(text)[1] == expected


@pytest.mark.parametrize(
    "text",
    [
        "head_rol=3",
        "head_roll",
        "head_roll=a..b",
        "head_roll=9..1",
        "head_roll=inf",
        "head_roll=..-inf",
    ],
)
def test_bad_requirements_are_refused(text):
    with pytest.raises(ProfileError):
        parse_requirement(text)


def test_overrides_and_profile_files(tmp_path):
    icao = load_profile("icao").with_overrides(["head_roll=-3..3", "head_yaw=off"])
    assert icao.requirements["head_roll"] == Requirement("head_roll", -3, 3)
    assert "head_yaw" not in icao.requirements
    own = tmp_path / "booth.toml"
    own.write_text("[require]\ninter_eye_distance = { min = 120 }\n", encoding="utf-8")
    assert load_profile(str(own)).requirements == {
        "inter_eye_distance": Requirement("inter_eye_distance", 120, None)
    }
    own.write_text("[require]\nhead_roll = { least = 1 }\n", encoding="utf-8")
    with pytest.raises(ProfileError, match="head_roll"):
        load_profile(str(own))
    with pytest.raises(ProfileError, match="not a built-in"):
        load_profile(str(tmp_path / "missing.toml"))
    # issue 30: an infinite bound, and tables nested deeper than the parser can go
    own.write_text("[require]\nhead_roll = { min = inf }\n", encoding="utf-8")
    with pytest.raises(ProfileError, match="finite"):
        load_profile(str(own))
    own.write_text("x = " + "[" * 5000 + "]" * 5000 + "\n", encoding="utf-8")
    with pytest.raises(ProfileError, match="nested too deep"):
        load_profile(str(own))


def test_built_in_profiles_are_shipped_and_valid():
    assert BUILT_IN == ("capture", "icao")
    for name in BUILT_IN:
        assert load_profile(name).requirements


def run_score(*arguments, stdin: str | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "fiqa_cli", "score", "--quiet", *map(str, arguments)]
    return subprocess.run(command, capture_output=True, text=True, input=stdin)


def test_score_profile_and_measures_columns_and_exit(tmp_path, closeup, lfw_images, scrfd_model):
    good = tmp_path / "good.png"
    cv2.imwrite(str(good), closeup)
    two = tmp_path / "two.png"
    cv2.imwrite(str(two), np.hstack([closeup, closeup]))
    detector = ["--detector", "scrfd", "--detector-model", scrfd_model]
    # The booth loop: one path at a time on stdin, one JSON line back for each. The close-up is
    # a 250x250 press photo enlarged: the default model (v11) gives it quality_100 31, an
    # expected 5.8% of its comparisons failing, under icao's 35, as it should; the capture
    # requirements are what this checks.
    result = run_score(
        "-", *detector, "--profile", "icao", "--require", "quality_100=off", "--measures",
        "--format", "jsonl", stdin=f"{good}\n{two}\n",
    )  # fmt: skip
    assert result.returncode == 3, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert list(rows[0]) == [*COLUMNS, *MEASURE_COLUMNS, *VERDICT_COLUMNS]
    assert rows[0]["verdict"] == PASS and rows[1]["verdict"] == FAIL, rows[0]["reasons"]
    assert "second face in the photo" in rows[1]["reasons"]
    # Only the geometric requirements are kept: the close-up passes, exit 0.
    light = [f"--require={key}=off" for key in load_profile("icao").requirements
             if key.removesuffix("_100") not in GEOMETRIC]  # fmt: skip
    result = run_score(good, *detector, "--profile", "icao", *light)
    assert result.returncode == 0, result.stderr
    header, row = result.stdout.splitlines()
    assert header.split(",") == [*COLUMNS, *VERDICT_COLUMNS]
    assert row.endswith(",pass,")


def test_detector_none_leaves_geometry_unassessed(tmp_path, closeup, detector):
    faces = detector.detect(closeup)
    crop = aligned_detected(closeup, faces, LARGEST_FACE)[0].crop
    given = tmp_path / "crop.png"
    cv2.imwrite(str(given), crop)
    result = run_score(given, "--detector", "none", "--measures", "--format", "jsonl")
    assert result.returncode == 0, result.stderr
    row = json.loads(result.stdout)
    for name in MEASURE_NAMES:
        if name in GEOMETRIC:
            assert (row[name], row[f"{name}_100"]) == (None, -1), name
        else:
            assert row[f"{name}_100"] >= 0, name
