"""quality_100: the scale's definition, the monotone fit, the metadata it travels in, and
`fiqa calibrate` end to end on shared photos."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from fiqa_cli.evaluation.calibration_fit import (
    PRIOR_COMPARISONS,
    PhotoFailures,
    fit_calibration,
    held_out_fit,
    identity_folds,
    photo_failures,
)
from fiqa_cli.evaluation.edc import Comparisons, non_mated_tail
from fiqa_cli.evaluation.onnx_metadata import OnnxFileError, with_metadata
from fiqa_cli.model_contract import META_CALIBRATION
from fiqa_cli.paths import default_model_path
from fiqa_cli.runtime.calibration import Calibration, CalibrationError, score_of_fnmr
from fiqa_cli.runtime.profiles import Profile, Requirement, judged
from fiqa_cli.runtime.rows import OK, QUALITY_100, Row


def test_the_scale_is_25_points_per_decade_of_fnmr():
    assert score_of_fnmr(np.array([1.0, 0.1, 0.01, 1e-3, 1e-4, 1e-6])).tolist() == [
        0, 25, 50, 75, 100, 100,
    ]  # fmt: skip


def test_scores_interpolate_on_a_log_scale_and_hold_the_ends():
    calibration = Calibration(qualities=[0.2, 0.4], fnmr=[0.1, 0.001], fmr=1e-3)
    assert calibration.scores(np.array([0.0, 0.2, 0.3, 0.4, 0.9])).tolist() == [25, 25, 50, 75, 75]
    assert calibration.score(float("nan")) == -1


@pytest.mark.parametrize(
    "qualities, fnmr",
    [([0.3, 0.2], [0.1, 0.01]), ([0.2, 0.3], [0.01, 0.1]), ([0.2], [0.0]), ([], [])],
)
def test_calibrations_that_are_not_monotone_or_not_rates_are_refused(qualities, fnmr):
    with pytest.raises(CalibrationError):
        Calibration(qualities=qualities, fnmr=fnmr, fmr=1e-3)


def test_json_round_trip_and_refusals():
    calibration = Calibration([0.1, 0.5], [0.2, 0.01], 1e-3, "fr.onnx", 10, 20, {"a": 1})
    assert Calibration.from_json(calibration.to_json()) == calibration
    record = json.loads(calibration.to_json())
    for broken in ({**record, "format": "x"}, {**record, "version": 2}, {**record, "fnmr": "x"}):
        with pytest.raises(CalibrationError):
            Calibration.from_json(json.dumps(broken))
    with pytest.raises(CalibrationError):
        Calibration.from_json("{")
    for field in ("samples", "mated_comparisons"):  # 1e999 reads as inf, which int() refuses
        text = json.dumps({**record, field: 0}).replace(f'"{field}": 0', f'"{field}": 1e999')
        with pytest.raises(CalibrationError, match="not a number"):
            Calibration.from_json(text)


def test_photo_failures_count_comparisons_at_or_below_the_threshold():
    comparisons = Comparisons(
        mated_a=np.array([0, 0, 1, 2]),
        mated_b=np.array([1, 2, 2, 3]),
        mated_scores=np.array([0.2, 0.5, 0.3, 0.9]),
        non_mated=non_mated_tail(np.array([0.1, 0.3])),
    )
    labels = photo_failures(comparisons, 5, threshold=0.3)
    assert labels.comparisons.tolist() == [2, 2, 3, 1, 0]
    assert labels.failures.tolist() == [1, 2, 1, 0, 0]  # 0.2 and 0.3 fail, 0.3 included


def test_the_fit_recovers_a_falling_failure_rate():
    """Photos whose true failure rate falls from 20% to 0.5% with quality: the fit is
    non-increasing and, with many comparisons, within a factor 1.5 of the truth."""
    rng = np.random.default_rng(0)
    qualities = rng.uniform(0, 1, 4000)
    truth = 0.2 * (0.005 / 0.2) ** qualities
    comparisons = np.full(len(qualities), 200)
    failures = rng.binomial(comparisons, truth)
    calibration = fit_calibration(qualities, PhotoFailures(comparisons, failures), 1e-3)
    assert np.all(np.diff(calibration.fnmr) <= 0)
    inside = np.linspace(0.1, 0.9, 9)
    fitted = 10 ** np.interp(inside, calibration.qualities, np.log10(calibration.fnmr))
    expected = 0.2 * (0.005 / 0.2) ** inside
    assert np.all(np.abs(np.log(fitted / expected)) < np.log(1.5))


def test_blocks_are_shrunk_towards_the_overall_rate_and_never_promise_zero():
    qualities = np.linspace(0, 1, 100)
    comparisons = np.full(100, 10)
    failures = np.where(qualities < 0.5, 2, 0)
    calibration = fit_calibration(qualities, PhotoFailures(comparisons, failures), 1e-3)
    overall = 100.5 / 1001
    # 50 photos of 10 comparisons, without a failure and with 100 failures: each block as if
    # it held PRIOR_COMPARISONS more at the overall rate.
    assert calibration.fnmr[-1] == pytest.approx(PRIOR_COMPARISONS * overall / 600)
    assert calibration.fnmr[0] == pytest.approx((100 + PRIOR_COMPARISONS * overall) / 600)
    assert len(calibration.qualities) == 2  # equal rates pool into one block


def test_held_out_fit_predicts_each_fold_from_the_other():
    rng = np.random.default_rng(1)
    identities = [f"id{i // 5}" for i in range(2000)]
    folds = identity_folds(identities)
    assert set(folds) == {0, 1}
    assert all(len({folds[i] for i in range(k, k + 5)}) == 1 for k in range(0, 2000, 5))
    qualities = rng.uniform(0, 1, 2000)
    comparisons = np.full(2000, 50)
    failures = rng.binomial(comparisons, 0.3 * (0.003 / 0.3) ** qualities)
    bands = held_out_fit(qualities, PhotoFailures(comparisons, failures), folds, 1e-3)
    assert sum(band["photos"] for band in bands) == 2000
    for band in bands:
        if band["comparisons"] > 5000:
            ratio = band["observed_fnmr"] / band["predicted_fnmr"]
            assert 0.6 < ratio < 1.6, band


def test_metadata_is_set_and_replaced_in_an_onnx_file(tmp_path):
    data = default_model_path().read_bytes()
    once = with_metadata(data, {META_CALIBRATION: "first", "fiqa.extra": "x"})
    twice = with_metadata(once, {META_CALIBRATION: "second"})
    path = tmp_path / "model.onnx"
    path.write_bytes(twice)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    metadata = session.get_modelmeta().custom_metadata_map
    assert metadata[META_CALIBRATION] == "second" and metadata["fiqa.extra"] == "x"
    assert twice.count(b"fiqa.quality_100") == 1
    # Everything else is the original model's, byte for byte, in its order.
    assert with_metadata(twice, {}) == twice
    assert twice == with_metadata(data, {"fiqa.extra": "x", META_CALIBRATION: "second"})
    with pytest.raises(OnnxFileError):
        with_metadata(data[:-7], {META_CALIBRATION: "x"})
    with pytest.raises(OnnxFileError):
        with_metadata(b"\x00\x01\x02", {})


def test_a_profile_on_quality_100_names_the_failure_rate():
    profile = Profile("t", "", {QUALITY_100: Requirement(QUALITY_100, min=50)})
    good = Row("a.jpg", OK, face=0, quality=0.5, measures={}, quality_100=60)
    bad = Row("b.jpg", OK, face=0, quality=0.1, measures={}, quality_100=25)
    unknown = Row("c.jpg", OK, face=0, quality=0.1, measures={})
    assert judged(good, profile).verdict == "pass"
    assert judged(bad, profile).reasons == (
        "face hard to recognise: quality 25 (at least 50; about 10% of its comparisons would fail)"
    )
    assert judged(unknown, profile).reasons == "recognition quality cannot be assessed"


def fiqa(*arguments: object) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "fiqa_cli", *map(str, arguments)]
    return subprocess.run(command, capture_output=True, text=True)


@pytest.fixture(scope="module")
def calibrated(shared_dir: Path, lfw_images: Path, random_onnx_model: Path, tmp_path_factory):
    """The random plumbing model (uncalibrated), calibrated on 20 LFW identities at FMR 1e-2."""
    out = tmp_path_factory.mktemp("calibrated") / "calibrated.onnx"
    out.write_bytes(random_onnx_model.read_bytes())
    out.chmod(0o640)  # a service running as another user, in the group, reads it
    fr_model = shared_dir / "models" / "mobilefacenet_eval.onnx"
    result = fiqa(
        "calibrate", lfw_images, "--model", out, "--out", out, "--fr-model", fr_model,
        "--detector", "mtcnn", "--faces", "central", "--limit-ids", 20, "--max-images-per-id", 6,
        "--fmr", 0.01,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "held-out fit" in result.stdout and "wrote" in result.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o640  # the replaced model's mode is kept
    return out


def test_calibrate_writes_a_model_whose_rows_carry_quality_100(calibrated, lfw_images, tmp_path):
    metadata = (
        ort.InferenceSession(str(calibrated), providers=["CPUExecutionProvider"])
        .get_modelmeta()
        .custom_metadata_map
    )
    calibration = Calibration.from_json(metadata[META_CALIBRATION])
    assert calibration.recognition_model == "mobilefacenet_eval.onnx"
    assert calibration.samples >= 40 and calibration.fmr == 0.01
    photo = next(lfw_images.glob("*/*.jpg"))
    result = fiqa(
        "score", photo, "--model", calibrated, "--detector", "mtcnn", "--measures",
        "--format", "jsonl", "--quiet",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    row = json.loads(result.stdout)
    assert row[QUALITY_100] == calibration.score(row["quality"]) and 0 <= row[QUALITY_100] <= 100
    assert list(row).index(QUALITY_100) == list(row).index("message") + 1


def test_a_quality_100_requirement_needs_a_calibrated_model(
    calibrated, random_onnx_model, lfw_images
):
    photo = next(lfw_images.glob("*/*.jpg"))
    common = ("--detector", "mtcnn", "--require", "quality_100=0", "--quiet")
    refused = fiqa("score", photo, "--model", random_onnx_model, *common)
    assert refused.returncode == 1 and refused.stdout == ""
    assert "carries no calibration" in refused.stderr and "fiqa calibrate" in refused.stderr
    accepted = fiqa("score", photo, "--model", calibrated, *common)
    assert accepted.returncode == 0, accepted.stderr
    assert accepted.stdout.splitlines()[1].endswith(",pass,")


def test_a_broken_calibration_is_refused_when_the_model_loads(random_onnx_model, tmp_path):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(
        with_metadata(random_onnx_model.read_bytes(), {META_CALIBRATION: '{"format": 1}'})
    )
    result = fiqa("score", "-", "--model", broken, "--quiet")
    assert result.returncode == 1
    assert f"metadata {META_CALIBRATION} is not a usable calibration" in result.stderr


def test_calibrate_refuses_a_bad_model_before_reading_photos(shared_dir, lfw_images, tmp_path):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    out = tmp_path / "out.onnx"
    result = fiqa(
        "calibrate", lfw_images, "--model", broken, "--out", out,
        "--fr-model", shared_dir / "models" / "mobilefacenet_eval.onnx",
    )  # fmt: skip
    assert result.returncode == 1 and "Error:" in result.stderr
    assert "images of" not in result.stderr  # no photo was read
    assert not out.exists()


def _crop_folders(root: Path, people: dict[str, int], seed: int) -> Path:
    """ROOT/NAME/ with that many random 112x112 crops each (for --detector none)."""
    import cv2

    rng = np.random.default_rng(seed)
    for name, count in people.items():
        (root / name).mkdir(parents=True)
        for index in range(count):
            crop = rng.integers(0, 256, size=(112, 112, 3), dtype=np.uint8)
            cv2.imwrite(str(root / name / f"{name}_{index:04d}.png"), crop)
    return root


def test_calibrate_takes_several_roots_and_keeps_their_identities_apart(
    shared_dir, random_onnx_model, tmp_path
):
    # "Alice" under both roots: two people, so 3 + 3 + 3 mated comparisons, not 15 + 3.
    first = _crop_folders(tmp_path / "lfw-heldout", {"Alice": 3, "Bob": 3}, seed=0)
    second = _crop_folders(tmp_path / "celeba-heldout", {"Alice": 3}, seed=1)
    out = tmp_path / "calibrated.onnx"
    common = (
        "--model", random_onnx_model, "--out", out, "--detector", "none", "--fmr", 0.1,
        "--fr-model", shared_dir / "models" / "mobilefacenet_eval.onnx",
    )  # fmt: skip
    result = fiqa("calibrate", first, second, *common)
    assert result.returncode == 0, result.stderr
    assert "9 images of 3 identities" in result.stderr
    metadata = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    calibration = Calibration.from_json(
        metadata.get_modelmeta().custom_metadata_map[META_CALIBRATION]
    )
    assert calibration.samples == 9 and calibration.mated_comparisons == 9
    assert calibration.fit["dataset"] == "lfw-heldout + celeba-heldout"
    twice = fiqa("calibrate", first, second, first, *common)
    assert twice.returncode == 2 and "is given twice" in twice.stderr
