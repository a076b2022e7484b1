"""Shared fixtures: the `../shared` data folder and a small exported ONNX quality model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
# Set (to 1) where the data must be there, as in CI: a missing data folder then fails the tests
# that need it instead of skipping them, so a broken data path cannot pass as a green run.
REQUIRE_SHARED = "FIQA_REQUIRE_SHARED"


def shared_root() -> Path:
    return Path(os.environ.get("FIQA_SHARED", REPO_ROOT.parent / "shared")).resolve()


def skip_without_shared_data(reason: str) -> None:
    """Skip for a newcomer without the data; fail where $FIQA_REQUIRE_SHARED is set."""
    if os.environ.get(REQUIRE_SHARED, "") not in ("", "0"):
        pytest.fail(f"{reason} (required: {REQUIRE_SHARED} is set)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    root = shared_root()
    if not (root / "README.md").is_file():
        skip_without_shared_data(f"shared data folder not found at {root} (set FIQA_SHARED)")
    return root


@pytest.fixture(scope="session")
def lfw_images(shared_dir: Path) -> Path:
    return shared_dir / "data" / "lfw-devtrain" / "images"


@pytest.fixture(scope="session")
def random_onnx_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised mobilefacenet exported through the project's own export path.

    It satisfies the model contract but is no quality model: tests use it for plumbing only.
    """
    torch = pytest.importorskip("torch")
    from fiqa_cli.export.backbones import create_backbone
    from fiqa_cli.export.onnx_export import export_model

    torch.manual_seed(0)
    model = create_backbone("mobilefacenet").eval()
    out = tmp_path_factory.mktemp("models") / "random_mobilefacenet.onnx"
    export_model(model, out, architecture="mobilefacenet")
    return out


@pytest.fixture(
    params=[
        (
            "cuda",
            "CUDAExecutionProvider",
            "pip install --force-reinstall --no-deps onnxruntime-gpu",
        ),
        ("tensorrt", "TensorrtExecutionProvider", "libnvinfer"),
    ],
    ids=["cuda", "tensorrt"],
)
def missing_gpu_device(request: pytest.FixtureRequest) -> tuple[str, str]:
    """A GPU `--device` whose provider this onnxruntime lacks, and the fix its error must name."""
    ort = pytest.importorskip("onnxruntime")
    device, provider, fix = request.param
    if provider in ort.get_available_providers():
        pytest.skip(f"this machine has {provider}; the missing-provider path cannot be shown")
    return device, fix
