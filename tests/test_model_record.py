"""Named models (`--model v5`) and the record of the model beside `fiqa score --out`, which
keeps `--resume` from continuing one model's rows with another's."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import click
import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from fiqa_cli.commands.options import model_option
from fiqa_cli.commands.score import score
from fiqa_cli.evaluation.onnx_metadata import with_metadata
from fiqa_cli.model_contract import META_CALIBRATION, META_SOURCE_SHA256
from fiqa_cli.paths import default_model_path, models_dir
from fiqa_cli.runtime.calibration import Calibration
from fiqa_cli.runtime.model_record import RECORD_SUFFIX, record_path
from fiqa_cli.runtime.named_models import NAMED_MODELS, named_model_path
from fiqa_cli.runtime.rows import read_rows

# v5's file as shipped (models/README.md): what `--model v5` must keep naming after the default
# changes.
V5_SHA256 = "0608bbe4bcdbea0388b774c8502591a420a473c95faff304aba66ef2774c3d64"


def test_v5_is_the_file_shipped_as_v5_and_default_the_default() -> None:
    v5 = named_model_path("v5")
    assert hashlib.sha256(v5.read_bytes()).hexdigest() == V5_SHA256
    assert named_model_path("default") == default_model_path()
    assert named_model_path("v6") is None
    for file_name in NAMED_MODELS.values():
        assert (models_dir() / file_name).is_file()


@click.command()
@model_option("A model.")
def _echo_model(model: Path | None) -> None:
    click.echo(str(model))


def test_model_option_takes_a_name_a_path_or_the_environment(tmp_path: Path) -> None:
    runner = CliRunner()

    def given(*args: str, env: dict[str, str] | None = None) -> str:
        result = runner.invoke(_echo_model, list(args), env=env)
        assert result.exit_code == 0, result.output
        return result.output.strip()

    assert given("--model", "v5") == str(models_dir() / "fiqa_v5.onnx")
    assert given("--model", "default") == str(default_model_path())
    assert given("--model", "./v5") == "v5"  # a file of that name
    assert given("--model", "mine.onnx") == "mine.onnx"
    assert given(env={"FIQA_MODEL": "v5"}) == str(models_dir() / "fiqa_v5.onnx")
    assert given() == "None"
    folder = runner.invoke(_echo_model, ["--model", str(tmp_path)])
    assert folder.exit_code == 2 and "is a folder" in folder.output


@pytest.fixture()
def crops(tmp_path: Path) -> list[Path]:
    """Three 112x112 'aligned crops' (noise: the rows, not the values, matter here)."""
    rng = np.random.default_rng(0)
    paths = []
    for index in range(3):
        path = tmp_path / f"crop{index}.png"
        cv2.imwrite(str(path), rng.integers(0, 256, size=(112, 112, 3), dtype=np.uint8))
        paths.append(path)
    return paths


def run(*args: object) -> object:
    return CliRunner().invoke(
        score, [*map(str, args), "--detector", "none", "--device", "cpu", "--quiet"]
    )


def test_score_by_name_is_score_by_file(crops: list[Path], tmp_path: Path) -> None:
    by_name, by_file = tmp_path / "name.csv", tmp_path / "file.csv"
    assert run(*crops, "--model", "v5", "--out", by_name).exit_code == 0
    assert run(*crops, "--model", named_model_path("v5"), "--out", by_file).exit_code == 0
    assert [r["quality"] for r in read_rows(by_name)] == [r["quality"] for r in read_rows(by_file)]


def _variant(tmp_path: Path, name: str, metadata: dict[str, str]) -> Path:
    """v5's file with some metadata replaced."""
    path = tmp_path / name
    path.write_bytes(with_metadata(named_model_path("v5").read_bytes(), metadata))
    return path


def test_a_run_records_its_model_beside_out_and_resume_continues_it(
    crops: list[Path], tmp_path: Path
) -> None:
    out = tmp_path / "scores.csv"
    assert run(crops[0], "--model", "v5", "--out", out).exit_code == 0
    record = json.loads(record_path(out).read_text())
    assert record_path(out).name == "scores.csv" + RECORD_SUFFIX
    assert record["model_sha256"] == V5_SHA256 and record["calibration_sha256"]
    assert read_rows(out)[0].keys() >= {"path", "quality"} and "model" not in read_rows(out)[0]
    resumed = run(*crops, "--model", "v5", "--out", out, "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert len(read_rows(out)) == 3
    assert not list(tmp_path.glob(".*.part"))  # the record was written whole, then renamed


def test_resume_refuses_rows_of_another_model_or_calibration(
    crops: list[Path], tmp_path: Path
) -> None:
    out = tmp_path / "scores.csv"
    assert run(crops[0], "--model", "v5", "--out", out).exit_code == 0
    written = out.read_bytes()
    other = _variant(tmp_path, "other.onnx", {META_SOURCE_SHA256: "0" * 64})
    refused = run(*crops, "--model", other, "--out", out, "--resume")
    assert refused.exit_code == 1
    assert "written by another model" in refused.output and "--model" in refused.output
    calibration = Calibration.from_json(_v5_metadata(META_CALIBRATION))
    recalibrated = _variant(
        tmp_path,
        "recalibrated.onnx",
        {META_CALIBRATION: dataclasses.replace(calibration, fmr=1e-2).to_json()},
    )
    refused = run(*crops, "--model", recalibrated, "--out", out, "--resume")
    assert refused.exit_code == 1 and "another calibration of this model" in refused.output
    assert out.read_bytes() == written  # nothing appended
    # A fresh run (no --resume) starts the file and its record over.
    assert run(*crops, "--model", recalibrated, "--out", out).exit_code == 0
    assert run(*crops, "--model", recalibrated, "--out", out, "--resume").exit_code == 0


def _v5_metadata(key: str) -> str:
    import onnxruntime as ort

    session = ort.InferenceSession(str(named_model_path("v5")), providers=["CPUExecutionProvider"])
    return session.get_modelmeta().custom_metadata_map[key]


def test_an_output_without_a_record_is_continued_by_v5_only(
    crops: list[Path], tmp_path: Path
) -> None:
    """Outputs of fiqa before records: its default was v5, so only v5 may continue them."""
    out = tmp_path / "old.csv"
    assert run(crops[0], "--model", "v5", "--out", out).exit_code == 0
    record_path(out).unlink()
    other = _variant(tmp_path, "other.onnx", {META_SOURCE_SHA256: "0" * 64})
    refused = run(*crops, "--model", other, "--out", out, "--resume")
    assert refused.exit_code == 1
    assert "has no record" in refused.output and "resume with --model v5" in refused.output
    assert not record_path(out).exists()
    accepted = CliRunner().invoke(
        score,
        [*map(str, crops), "--model", "v5", "--out", str(out), "--resume"]
        + ["--detector", "none", "--device", "cpu"],
    )
    assert accepted.exit_code == 0, accepted.output
    assert "warning" in accepted.stderr and "taken to be v5" in accepted.stderr
    assert json.loads(record_path(out).read_text())["model_sha256"] == V5_SHA256
    assert len(read_rows(out)) == 3


def test_an_output_without_rows_is_continued_by_any_model(
    crops: list[Path], tmp_path: Path
) -> None:
    out = tmp_path / "empty.csv"
    out.write_text("")
    other = _variant(tmp_path, "other.onnx", {META_SOURCE_SHA256: "0" * 64})
    assert run(*crops, "--model", other, "--out", out, "--resume").exit_code == 0
    recorded = json.loads(record_path(out).read_text())["model_sha256"]
    assert recorded == hashlib.sha256(other.read_bytes()).hexdigest()


def test_a_damaged_record_is_refused(crops: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "scores.csv"
    assert run(crops[0], "--model", "v5", "--out", out).exit_code == 0
    record_path(out).write_text("{not json")
    refused = run(*crops, "--model", "v5", "--out", out, "--resume")
    assert refused.exit_code == 1 and "is not a fiqa model record" in refused.output
