"""What a user gets from `pip install .`: the package layout, the console script, lean imports."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import REPO_ROOT


def test_wheel_holds_runtime_training_and_models(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(REPO_ROOT),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
        ],
        check=True,
    )
    (wheel,) = tmp_path.glob("fiqa-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in (
        "fiqa_cli/cli.py",
        "fiqa_cli/commands/score.py",
        "fiqa_cli/runtime/pipeline.py",
        "fiqa_cli/evaluation/edc.py",
        "fiqa_cli/cluster/ray_scoring.py",
        "fiqa_cli/export/train.py",
        "fiqa_cli/export/backbones/iresnet.py",
        "fiqa_cli/models/fiqa_default.onnx",
        "fiqa_cli/models/fiqa_v5.onnx",
        "fiqa_cli/models/README.md",
        "fiqa_cli/models/face_detection_yunet_2026may.onnx",
        "fiqa_cli/models/mediapipe_face_mesh.onnx",
        "fiqa_cli/models/mediapipe_mean_face.npy",
        "fiqa_cli/runtime/profile_files/icao.toml",
        "fiqa_cli/runtime/profile_files/capture.toml",
    ):
        assert expected in names, f"{expected} missing from {wheel.name}"
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "fiqa = fiqa_cli.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_scoring_never_imports_torch(random_onnx_model: Path, tmp_path: Path) -> None:
    import cv2
    import numpy as np

    crop = tmp_path / "crop.png"
    cv2.imwrite(str(crop), np.full((112, 112, 3), 128, np.uint8))
    program = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from fiqa_cli.cli import main\n"
        f"result = CliRunner().invoke(main, ['score', {str(crop)!r}, '--detector', 'none',"
        f" '--model', {str(random_onnx_model)!r}, '--quiet'])\n"
        "assert result.exit_code == 0, result.output\n"
        "assert 'torch' not in sys.modules, 'the scoring path imported torch'\n"
    )
    subprocess.run([sys.executable, "-c", program], check=True)


HEAVY_MODULES = ("onnxruntime", "torch", "cv2", "numpy", "insightface", "ray", "matplotlib", "onnx")


def _modules_loaded_by(arguments: list[str]) -> list[str]:
    program = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from fiqa_cli.cli import main\n"
        f"result = CliRunner().invoke(main, {arguments!r})\n"
        "assert result.exit_code == 0, result.output\n"
        f"print(' '.join(m for m in {HEAVY_MODULES!r} if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], check=True, capture_output=True, text=True
    )
    return done.stdout.split()


def test_help_lists_every_command_and_loads_nothing_heavy() -> None:
    from fiqa_cli.cli import COMMANDS

    assert _modules_loaded_by(["--help"]) == []
    program = "from click.testing import CliRunner\nfrom fiqa_cli.cli import main\n"
    program += "print(CliRunner().invoke(main, ['--help']).output)"
    listing = subprocess.run(
        [sys.executable, "-c", program], check=True, capture_output=True, text=True
    )
    for name in COMMANDS:
        assert name in listing.stdout, name


@pytest.mark.parametrize("command", sorted(__import__("fiqa_cli.cli").cli.COMMANDS))
def test_command_help_loads_no_model_runtime(command: str) -> None:
    """`fiqa CMD --help` (and usage errors) must be instant: no onnxruntime, torch, OpenCV or
    numpy, whatever the command runs."""
    assert _modules_loaded_by([command, "--help"]) == []
