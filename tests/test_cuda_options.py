"""Every command that runs a model takes --cuda-option and hands it to its CUDA sessions (which
default to full fp32, use_tf32=0: runtime/providers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from fiqa_cli.cli import main
from fiqa_cli.errors import FiqaError


class _Asked(FiqaError):
    """Raised where the providers are chosen: the command got that far with its options."""


@pytest.mark.parametrize("command", ["score", "best", "evaluate", "calibrate"])
def test_cuda_options_reach_the_providers(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[tuple[str, dict[str, str]]] = []

    def select_providers(device, cuda_options=None, tensorrt_options=None):
        asked.append((device, dict(cuda_options or {})))
        raise _Asked("providers chosen")

    # build.py holds its own reference (imported here first, so that what is restored after
    # the test is the real function); the others import it when they run.
    monkeypatch.setattr("fiqa_cli.runtime.build.select_providers", select_providers)
    monkeypatch.setattr("fiqa_cli.runtime.providers.select_providers", select_providers)
    photo = tmp_path / "people" / "someone" / "a.jpg"
    photo.parent.mkdir(parents=True)
    photo.write_bytes(b"not read: the providers are chosen first")
    fr_model = tmp_path / "fr.onnx"
    fr_model.write_bytes(b"not read either")
    arguments = {
        "score": [str(photo)],
        "best": [str(photo)],
        "evaluate": [str(tmp_path / "people"), "--fr-model", str(fr_model)],
        "calibrate": [str(tmp_path / "people"), "--fr-model", str(fr_model), "--out", "x.onnx"],
    }[command]
    options = ["--device", "cuda", "--cuda-option", "use_tf32=1", "--cuda-option", "device_id=1"]
    result = CliRunner().invoke(main, [command, *arguments, *options])
    assert "providers chosen" in result.output, result.output
    assert asked and asked[0] == ("cuda", {"use_tf32": "1", "device_id": "1"})
