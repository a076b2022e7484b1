"""`fiqa doctor`: reports packages, providers and models, and fails when scoring cannot work."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from fiqa_cli.cli import main


def run_doctor(*args: object):
    return CliRunner().invoke(main, ["doctor", *map(str, args)])


@pytest.fixture(autouse=True)
def no_environment_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FIQA_MODEL", raising=False)
    monkeypatch.delenv("FIQA_DEVICE", raising=False)


def test_healthy_installation(random_onnx_model: Path) -> None:
    result = run_doctor("--model", random_onnx_model, "--device", "cpu")
    assert result.exit_code == 0, result.output
    for expected in ("onnxruntime:", "insightface:", "numpy:", "torch:", "CPUExecutionProvider"):
        assert expected in result.output
    assert f"quality model: {random_onnx_model} (mobilefacenet)" in result.output
    assert "MTCNN weights: " in result.output and "ok: fiqa score can run" in result.output
    assert "named models (--model NAME): default, v11, v5" in result.output


def test_a_missing_named_model_is_a_problem(
    random_onnx_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("fiqa_cli.runtime.named_models.models_dir", lambda: tmp_path)
    result = run_doctor("--model", random_onnx_model, "--device", "cpu")
    assert result.exit_code == 1
    assert f"the shipped model v5 is missing ({tmp_path / 'fiqa_v5.onnx'})" in result.output


def test_missing_default_model_is_a_problem(tmp_path: Path, monkeypatch) -> None:
    missing = tmp_path / "fiqa_default.onnx"
    monkeypatch.setattr("fiqa_cli.commands.doctor.default_model_path", lambda: missing)
    result = run_doctor("--device", "cpu")
    assert result.exit_code == 1
    assert f"default quality model: missing ({missing})" in result.output


def test_unusable_model_is_a_problem(tmp_path: Path) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_text("not onnx")
    result = run_doctor("--model", broken, "--device", "cpu")
    assert result.exit_code == 1 and "not a loadable ONNX model" in result.output


def test_gpu_device_asked_but_missing_prints_the_fix(
    missing_gpu_device: tuple[str, str], random_onnx_model: Path
) -> None:
    device, fix = missing_gpu_device
    result = run_doctor("--model", random_onnx_model, "--device", device)
    assert result.exit_code == 1
    assert fix in result.output


def test_detectors_found_and_the_one_auto_takes(
    random_onnx_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shared_dir: Path
) -> None:
    from fiqa_cli.paths import yunet_model_path
    from fiqa_cli.runtime import detect

    monkeypatch.setenv("INSIGHTFACE_HOME", str(tmp_path))
    result = run_doctor("--model", random_onnx_model, "--device", "cpu")
    assert f"YuNet detector: {yunet_model_path()}\n" in result.output
    assert f"--detector auto takes: {detect.AUTO_FALLBACK} (" in result.output
    pack = tmp_path / "models" / "buffalo_s"
    pack.mkdir(parents=True)
    (pack / "det_500m.onnx").write_bytes(
        (shared_dir / "models" / "scrfd_500m_bnkps.onnx").read_bytes()
    )
    result = run_doctor("--model", random_onnx_model, "--device", "cpu")
    assert f"--detector auto takes: scrfd ({pack / 'det_500m.onnx'})" in result.output


def test_a_missing_yunet_file_is_a_problem(
    random_onnx_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INSIGHTFACE_HOME", str(tmp_path))
    missing = tmp_path / "face_detection_yunet.onnx"
    monkeypatch.setattr("fiqa_cli.commands.doctor.yunet_model_path", lambda: missing)
    result = run_doctor("--model", random_onnx_model, "--device", "cpu")
    assert f"YuNet detector: missing ({missing})" in result.output
    assert result.exit_code == 1 and "YuNet model" in result.output


def test_the_models_data_terms_are_shown(random_onnx_model: Path, tmp_path: Path) -> None:
    from fiqa_cli.evaluation.onnx_metadata import with_metadata
    from fiqa_cli.model_contract import META_DATA_TERMS

    unrecorded = run_doctor("--model", random_onnx_model, "--device", "cpu")
    assert "trained on: data terms not recorded" in unrecorded.output
    terms = "CelebA: non-commercial research only"
    model = tmp_path / "with_terms.onnx"
    model.write_bytes(with_metadata(random_onnx_model.read_bytes(), {META_DATA_TERMS: terms}))
    result = run_doctor("--model", model, "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert f"trained on: {terms}" in result.output
