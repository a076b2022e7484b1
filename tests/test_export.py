"""`fiqa export`: checkpoint loading, the exported graph, its metadata and its parity."""

from __future__ import annotations

import copy
import json
import os
import re
import stat
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

import cv2  # noqa: E402
import onnxruntime as ort  # noqa: E402
from click.testing import CliRunner  # noqa: E402
from contract_input import by_hand_contract  # noqa: E402
from torch import nn  # noqa: E402

from fiqa_cli import __version__, model_contract  # noqa: E402
from fiqa_cli.cli import main  # noqa: E402
from fiqa_cli.errors import FiqaError  # noqa: E402
from fiqa_cli.export.backbones import create_backbone  # noqa: E402
from fiqa_cli.export.checkpoint import (  # noqa: E402
    CheckpointError,
    detect_architecture,
    file_sha256,
    load_backbone,
)
from fiqa_cli.export.onnx_export import (  # noqa: E402
    BATCH_AXIS,
    PARITY_SEED,
    PARITY_TOLERANCE,
    RANDOM_PARITY_BATCH,
    ExportError,
    export_checkpoint,
    export_model,
    measure_parity,
    relative_difference,
)

SCRFD_MODEL = Path("models") / "scrfd_500m_bnkps.onnx"
PARITY_FACES = 4


def trained_looking(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give normalisation and PReLU layers non-default values, as training would.

    Freshly initialised BatchNorm layers are identities in eval mode, which would leave
    half of what the exporter must reproduce untested.
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5, generator=generator)
                module.bias.normal_(0.0, 0.1, generator=generator)
                module.running_mean.normal_(0.0, 0.1, generator=generator)
                module.running_var.uniform_(0.5, 1.5, generator=generator)
            elif isinstance(module, nn.PReLU):
                module.weight.uniform_(0.1, 0.4, generator=generator)
    return model.eval()


def random_backbone(name: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return trained_looking(create_backbone(name), seed)


def run_export(*args: object) -> object:
    return CliRunner().invoke(main, ["export", *map(str, args)])


def onnx_outputs(path: Path, batch: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(
        [model_contract.EMBEDDING_OUTPUT, model_contract.QUALITY_OUTPUT],
        {model_contract.INPUT_NAME: batch},
    )


def torch_outputs(model: nn.Module, batch: np.ndarray) -> list[np.ndarray]:
    with torch.no_grad():
        return [output.numpy() for output in model.eval()(torch.from_numpy(batch))]


def metadata(path: Path) -> dict[str, str]:
    model = onnx.load(str(path), load_external_data=False)
    return {prop.key: prop.value for prop in model.metadata_props}


@pytest.fixture(scope="module")
def aligned_faces(shared_dir: Path, lfw_images: Path, tmp_path_factory) -> Path:
    """Real ArcFace-aligned 112x112 crops of LFW photos, made by the project's detector."""
    from fiqa_cli.runtime.align import align_face
    from fiqa_cli.runtime.decode import read_image
    from fiqa_cli.runtime.detect import create_detector

    detector = create_detector("scrfd", model_path=shared_dir / SCRFD_MODEL)
    folder = tmp_path_factory.mktemp("aligned_faces")
    for photo in sorted(lfw_images.glob("*/*.jpg"))[:PARITY_FACES]:
        image = read_image(photo)
        face = detector.detect(image)[0]
        cv2.imwrite(str(folder / f"{photo.stem}.png"), align_face(image, face.landmarks))
    return folder


@pytest.fixture(scope="module")
def official_iresnet50(tmp_path_factory) -> tuple[nn.Module, Path]:
    """A random iresnet50 saved as official CR-FIQA checkpoints are: a bare state_dict."""
    model = random_backbone("iresnet50")
    path = tmp_path_factory.mktemp("official") / "iresnet50_backbone.pth"
    torch.save(model.state_dict(), path)
    return model, path


@pytest.fixture
def mobilefacenet_checkpoint(tmp_path: Path) -> tuple[nn.Module, Path]:
    model = random_backbone("mobilefacenet")
    path = tmp_path / "mobilefacenet.pt"
    torch.save(model.state_dict(), path)
    return model, path


def test_official_iresnet50_exports_and_reproduces_torch_on_real_faces(
    official_iresnet50, aligned_faces, tmp_path
):
    model, checkpoint = official_iresnet50
    out = tmp_path / "quality.onnx"

    result = run_export(checkpoint, "--out", out, "--parity-images", aligned_faces)

    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(out)
    assert f"parity on {PARITY_FACES} aligned crops" in result.stderr
    crops = [cv2.imread(str(path)) for path in sorted(aligned_faces.iterdir())]
    batch = by_hand_contract(crops)
    expected, exported = torch_outputs(model, batch), onnx_outputs(out, batch)
    for reference, candidate in zip(expected, exported, strict=True):
        assert relative_difference(reference, candidate) < 1e-4
    assert metadata(out)[model_contract.META_ARCHITECTURE] == "iresnet50"


def test_default_output_is_beside_the_checkpoint(mobilefacenet_checkpoint):
    _, checkpoint = mobilefacenet_checkpoint

    result = run_export(checkpoint)

    assert result.exit_code == 0, result.output
    assert model_contract.META_DATA_TERMS not in metadata(checkpoint.with_suffix(".onnx"))
    assert Path(result.stdout.strip()) == checkpoint.with_suffix(".onnx")
    assert checkpoint.with_suffix(".onnx").is_file()


def test_data_parallel_prefix_is_accepted(mobilefacenet_checkpoint, tmp_path):
    model, _ = mobilefacenet_checkpoint
    checkpoint = tmp_path / "ddp.pth"
    torch.save({f"module.{key}": value for key, value in model.state_dict().items()}, checkpoint)

    result = run_export(checkpoint, "--out", tmp_path / "ddp.onnx")

    assert result.exit_code == 0, result.output
    assert "exported mobilefacenet (fp32)" in result.stderr


def training_checkpoint(model: nn.Module, **config_changes: object) -> dict:
    """A checkpoint as `fiqa train` writes it (format_version 1)."""
    config = {
        "arch": "mobilefacenet",
        "embedding_size": 512,
        "cr_formula": model_contract.CR_FORMULA_PAPER,
        "input_size": 112,
        "color_order": "RGB",
        "mean": [0.5, 0.5, 0.5],
        "std": [0.5, 0.5, 0.5],
        "alignment": model_contract.ALIGNMENT_TEMPLATE,
        "dataset_fingerprint": "abc123",
    }
    return {
        "format": "fiqa-checkpoint",
        "format_version": 1,
        "backbone": model.state_dict(),
        "head": {"kernel": torch.randn(512, 10)},
        "optimizer": {"state": {}, "param_groups": [{"lr": 0.1, "params": [0, 1]}]},
        "scheduler": {"last_epoch": 3},
        "step": 100,
        "epoch": 3,
        "config": config | config_changes,
    }


def test_training_checkpoint_exports_with_metadata_and_dynamic_batch(tmp_path):
    model = random_backbone("mobilefacenet", seed=1)
    checkpoint = tmp_path / "step_100.pt"
    torch.save(training_checkpoint(model), checkpoint)
    out = tmp_path / "trained.onnx"

    terms = "LFW: research use; CelebA: non-commercial research only"
    result = run_export(checkpoint, "--out", out, "--data-terms", terms)

    assert result.exit_code == 0, result.output
    properties = metadata(out)
    assert properties[model_contract.META_DATA_TERMS] == terms
    assert properties[model_contract.META_ARCHITECTURE] == "mobilefacenet"
    assert properties[model_contract.META_CR_FORMULA] == model_contract.CR_FORMULA_PAPER
    assert properties[model_contract.META_SOURCE_SHA256] == file_sha256(checkpoint)
    assert properties[model_contract.META_VERSION] == __version__
    assert properties[model_contract.META_PRECISION] == "fp32"
    assert properties[model_contract.META_EMBEDDING_SIZE] == "512"
    assert properties[model_contract.META_COLOR_ORDER] == "RGB"
    assert properties[model_contract.META_ALIGNMENT] == model_contract.ALIGNMENT_TEMPLATE
    assert float(properties[model_contract.META_PIXEL_SCALE]) == pytest.approx(1 / 255)
    onnx.checker.check_model(str(out))
    for batch_size in (1, 5):
        batch = np.random.default_rng(batch_size).uniform(-1, 1, (batch_size, 3, 112, 112))
        batch = batch.astype(np.float32)
        embedding, quality = onnx_outputs(out, batch)
        assert embedding.shape == (batch_size, 512) and quality.shape == (batch_size, 1)
        assert relative_difference(torch_outputs(model, batch)[1], quality) < 1e-4


def test_score_with_exported_training_checkpoint_equals_torch(aligned_faces, tmp_path):
    model = random_backbone("mobilefacenet", seed=2)
    checkpoint = tmp_path / "checkpoint.pt"
    torch.save(training_checkpoint(model), checkpoint)
    out = tmp_path / "trained.onnx"
    assert run_export(checkpoint, "--out", out).exit_code == 0
    rows_file = tmp_path / "scores.jsonl"

    result = CliRunner().invoke(
        main,
        ["score", str(aligned_faces), "--detector", "none", "--model", str(out), "--quiet",
         "--out", str(rows_file)],
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in rows_file.read_text().splitlines()]
    crops = [cv2.imread(str(aligned_faces / Path(row["path"]).name)) for row in rows]
    expected = torch_outputs(model, by_hand_contract(crops))[1][:, 0]
    scored = np.array([row["quality"] for row in rows])
    assert len(rows) == PARITY_FACES and all(row["status"] == "ok" for row in rows)
    # Rows carry 6 decimals: the difference is rounding, not the model.
    np.testing.assert_allclose(scored, expected, atol=1e-6 + 1e-4 * np.abs(expected).max())


def test_training_checkpoint_with_other_preprocessing_is_refused(tmp_path):
    checkpoint = tmp_path / "imagenet_norm.pt"
    model = create_backbone("mobilefacenet")
    torch.save(training_checkpoint(model, mean=[0.485, 0.456, 0.406]), checkpoint)

    with pytest.raises(CheckpointError, match="trained with mean="):
        load_backbone(checkpoint)


def test_fp16_export_keeps_float32_interface_within_tolerance(aligned_faces, tmp_path):
    model = random_backbone("iresnet18")
    checkpoint = tmp_path / "iresnet18.pth"
    torch.save(model.state_dict(), checkpoint)

    result = export_checkpoint(
        checkpoint, tmp_path / "half.onnx", fp16=True, parity_images=aligned_faces
    )

    assert result.precision == "fp16"
    assert result.parity.passed and result.parity.tolerance == PARITY_TOLERANCE["fp16"]
    graph = onnx.load(str(result.out_path)).graph
    assert graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert all(o.type.tensor_type.elem_type == onnx.TensorProto.FLOAT for o in graph.output)
    assert any(init.data_type == onnx.TensorProto.FLOAT16 for init in graph.initializer)
    assert metadata(result.out_path)[model_contract.META_PRECISION] == "fp16"


def test_parity_tolerances_are_the_documented_ones():
    # docs/training.md: "exceeds 1e-4 (1e-2 for --fp16)"; a looser tolerance passes wrong exports.
    assert PARITY_TOLERANCE == {"fp32": 1e-4, "fp16": 1e-2}


def nudged_quality_head(model: nn.Module, batch: np.ndarray, relative: float) -> nn.Module:
    """A copy of `model` whose quality output on `batch` is off by `relative` of its scale."""
    nudged = copy.deepcopy(model)
    scale = float(np.abs(torch_outputs(model, batch)[1]).max())
    with torch.no_grad():
        nudged.qs.bias += relative * scale
    return nudged


def seeded_parity_batch() -> np.ndarray:
    """The input the export checks parity on when no --parity-images are given."""
    size = model_contract.INPUT_SIZE
    batch = np.random.default_rng(PARITY_SEED).uniform(-1, 1, (RANDOM_PARITY_BATCH, 3, size, size))
    return batch.astype(np.float32)


def test_parity_measures_the_quality_output(mobilefacenet_checkpoint, tmp_path):
    model, _ = mobilefacenet_checkpoint
    batch = seeded_parity_batch()
    nudged = export_model(
        nudged_quality_head(model, batch, 1e-3), tmp_path / "n.onnx", architecture="mobilefacenet"
    )

    parity = measure_parity(model, nudged, batch)

    assert parity.embedding < 1e-5  # the embedding is untouched ...
    assert parity.quality == pytest.approx(1e-3, rel=0.05)  # ... the quality head is not
    assert not parity.passed


def test_export_with_a_nudged_quality_head_is_refused(
    mobilefacenet_checkpoint, tmp_path, monkeypatch
):
    """A graph whose quality head is off by a thousandth of its scale must not be written."""
    from fiqa_cli.export import onnx_export

    _, checkpoint = mobilefacenet_checkpoint
    exact = onnx_export.export_model

    def export_nudged(model, *args, **kwargs):
        return exact(nudged_quality_head(model, seeded_parity_batch(), 1e-3), *args, **kwargs)

    monkeypatch.setattr(onnx_export, "export_model", export_nudged)
    out = tmp_path / "nudged.onnx"

    result = run_export(checkpoint, "--out", out)

    assert result.exit_code == 1
    assert "does not reproduce the checkpoint" in result.stderr and "quality 1.0" in result.stderr
    assert list(tmp_path.glob("nudged.onnx*")) == []


def test_failed_parity_writes_no_model(mobilefacenet_checkpoint, tmp_path, monkeypatch):
    _, checkpoint = mobilefacenet_checkpoint
    monkeypatch.setitem(PARITY_TOLERANCE, "fp32", 0.0)  # float rounding alone now fails it
    out = tmp_path / "rejected.onnx"

    result = run_export(checkpoint, "--out", out)

    assert result.exit_code == 1
    assert "does not reproduce the checkpoint" in result.stderr
    assert list(tmp_path.glob("rejected.onnx*")) == []


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        (lambda sd: sd.pop("qs.weight"), "missing keys (1): qs.weight"),
        (
            lambda sd: sd.update({"qs.weight": torch.zeros(1, 256)}),
            "qs.weight (1, 256) != (1, 512)",
        ),
        (
            lambda sd: sd.update({"extra.weight": torch.zeros(1)}),
            "unexpected keys (1): extra.weight",
        ),
    ],
    ids=["missing", "shape", "unexpected"],
)
def test_state_dict_that_does_not_fit_is_refused(mobilefacenet_checkpoint, spoil, message):
    model, checkpoint = mobilefacenet_checkpoint
    state_dict = model.state_dict()
    spoil(state_dict)
    torch.save(state_dict, checkpoint)

    result = run_export(checkpoint)

    assert result.exit_code == 1
    assert "does not fit mobilefacenet" in result.stderr and message in result.stderr
    assert not checkpoint.with_suffix(".onnx").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"epoch 3: loss 1.2\n", "is not a PyTorch checkpoint"),
        (os.urandom(4096), "is not a PyTorch checkpoint"),
    ],
    ids=["empty", "text", "random-bytes"],
)
def test_non_checkpoint_file_is_refused(tmp_path, content, message):
    path = tmp_path / "model.pth"
    path.write_bytes(content)

    result = run_export(path)

    assert result.exit_code == 1 and message in result.stderr


def test_truncated_checkpoint_is_refused(mobilefacenet_checkpoint):
    _, checkpoint = mobilefacenet_checkpoint
    checkpoint.write_bytes(checkpoint.read_bytes()[:50_000])

    result = run_export(checkpoint)

    assert result.exit_code == 1 and "is corrupt" in result.stderr


class CodeOnLoad:
    """Unpickling this runs a shell command; a safe loader must never get that far."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_that_would_run_code_is_refused(tmp_path):
    marker = tmp_path / "code_ran"
    path = tmp_path / "evil.pth"
    torch.save({"conv1.weight": torch.zeros(1), "payload": CodeOnLoad(marker)}, path)

    result = run_export(path)

    assert result.exit_code == 1
    assert "could run arbitrary code" in result.stderr and "--trust-checkpoint" in result.stderr
    assert "system" in result.stderr  # names what the pickle wants to call
    assert not marker.exists()


def test_trust_checkpoint_lets_a_whole_pickled_model_through(tmp_path):
    path = tmp_path / "whole_model.pth"
    torch.save(random_backbone("mobilefacenet"), path)

    refused = run_export(path)
    trusted = run_export(path, "--trust-checkpoint")

    assert refused.exit_code == 1 and "--trust-checkpoint" in refused.stderr
    assert trusted.exit_code == 0, trusted.output
    assert path.with_suffix(".onnx").is_file()


def test_unknown_layout_asks_for_arch(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"encoder.weight": torch.zeros(3)}, path)

    with pytest.raises(CheckpointError, match="pass --arch"):
        load_backbone(path)


@pytest.mark.parametrize("name", ["iresnet18", "iresnet34", "iresnet50", "iresnet100"])
def test_architecture_is_detected_from_keys(name):
    assert detect_architecture(create_backbone(name).state_dict()) == name


def test_arch_option_overrides_detection(mobilefacenet_checkpoint):
    _, checkpoint = mobilefacenet_checkpoint

    result = run_export(checkpoint, "--arch", "iresnet18", "--no-parity")

    assert result.exit_code == 1 and "does not fit iresnet18" in result.stderr


def test_relative_difference_is_scaled_by_the_reference():
    reference = np.array([[10.0, -20.0], [0.0, 5.0]], np.float32)

    assert relative_difference(reference, reference) == 0.0
    assert relative_difference(reference, reference + 0.2) == pytest.approx(0.01, rel=1e-5)
    assert relative_difference(reference, reference[:1]) == float("inf")
    overflowed = reference.copy()
    overflowed[1, 0] = np.inf
    assert relative_difference(reference, overflowed) == float("inf")


@pytest.mark.slow
def test_official_iresnet100_with_prefix_exports(tmp_path, aligned_faces):
    model = random_backbone("iresnet100")
    checkpoint = tmp_path / "iresnet100_backbone.pth"
    torch.save({f"module.{key}": value for key, value in model.state_dict().items()}, checkpoint)
    del model

    result = run_export(checkpoint, "--parity-images", aligned_faces)

    assert result.exit_code == 0, result.output
    assert "exported iresnet100 (fp32)" in result.stderr


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ([1, 2], "config is a list"),
        ({"embedding_size": "abc"}, "embedding_size='abc'"),
        ({"embedding_size": True}, "embedding_size=True"),
        ({"arch": 5}, "arch=5"),
        ({"cr_formula": "mine"}, "cr_formula='mine'"),
    ],
)
def test_malformed_checkpoint_config_names_the_bad_key(tmp_path, config, key):
    content = training_checkpoint(create_backbone("mobilefacenet"))
    content["config"] = config if isinstance(config, list) else content["config"] | config
    checkpoint = tmp_path / "bad_config.pt"
    torch.save(content, checkpoint)
    with pytest.raises(CheckpointError, match=re.escape(key)):
        load_backbone(checkpoint)


def test_export_writes_over_regular_files_only(mobilefacenet_checkpoint, tmp_path):
    target = tmp_path / "target.onnx"
    target.write_bytes(b"precious")
    link = tmp_path / "link.onnx"
    link.symlink_to(target)
    fifo = tmp_path / "fifo.onnx"
    os.mkfifo(fifo)
    for out, reason in ((link, "symbolic link"), (fifo, "not a regular file")):
        result = run_export(mobilefacenet_checkpoint[1], "--out", out, "--no-parity")
        assert result.exit_code == 1 and reason in result.output, result.output
    assert link.is_symlink() and stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert target.read_bytes() == b"precious"
    # issue 30: a link planted where a staging file could go is never written through
    out = tmp_path / "model.onnx"
    (tmp_path / "model.onnx.partial").symlink_to(target)
    result = run_export(mobilefacenet_checkpoint[1], "--out", out, "--no-parity")
    assert result.exit_code == 0, result.output
    assert target.read_bytes() == b"precious"
    assert stat.S_ISREG(os.lstat(out).st_mode) and out.stat().st_size > 1000
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".fiqa-")]


def face_variants(aligned_faces: Path, folder: Path, gains: list[float]) -> Path:
    """The aligned faces under brightness gains and mirrored: more crops of real faces."""
    folder.mkdir()
    for path in sorted(aligned_faces.glob("*.png")):
        face = cv2.imread(str(path))
        for gain in gains:
            varied = np.clip(face.astype(np.float32) * gain, 0, 255).astype(np.uint8)
            for mirrored, image in (("", varied), ("-m", varied[:, ::-1])):
                cv2.imwrite(str(folder / f"{path.stem}-{gain:.2f}{mirrored}.png"), image)
    return folder


@pytest.fixture
def int8_folders(aligned_faces: Path, tmp_path: Path) -> tuple[Path, Path]:
    calibration = face_variants(
        aligned_faces, tmp_path / "calibration", [0.4 + 0.1 * i for i in range(7)]
    )
    parity = face_variants(aligned_faces, tmp_path / "parity", [0.45, 0.75, 1.05, 1.35])
    return calibration, parity


def test_int8_quantisation_keeps_the_default_models_ranking(int8_folders, tmp_path):
    """The shipped model's weights, quantised as `--int8` does, order real faces as the
    float32 model does (a seeded random backbone does not quantise as well: its activations
    are not a trained network's)."""
    from fiqa_cli.export.quantize import calibration_inputs, quantize, rank_correlation
    from fiqa_cli.paths import default_model_path
    from fiqa_cli.runtime.quality_model import QualityModel

    calibration, parity = int8_folders
    out = tmp_path / "int8.onnx"
    quantize(default_model_path(), out, calibration_inputs(calibration))
    faces = [cv2.imread(str(path)) for path in sorted(parity.glob("*.png"))]
    fp32 = QualityModel(default_model_path(), ["CPUExecutionProvider"]).predict(faces)
    int8 = QualityModel(out, ["CPUExecutionProvider"])
    assert rank_correlation(fp32, int8.predict(faces)) >= 0.99
    assert int8.metadata[model_contract.META_PRECISION] == "int8"
    assert int8.calibration is not None  # the metadata, quality_100's included, is kept


def test_int8_export_writes_a_quantised_model(
    mobilefacenet_checkpoint, int8_folders, tmp_path, monkeypatch
):
    from fiqa_cli.export import onnx_export

    _, checkpoint = mobilefacenet_checkpoint
    calibration, parity = int8_folders
    monkeypatch.setattr(onnx_export, "MIN_RANK_CORRELATION", -1.0)  # any ranking passes
    out = tmp_path / "int8.onnx"
    result = run_export(checkpoint, "--out", out, "--int8", calibration, "--parity-images", parity)
    assert result.exit_code == 0, result.output
    assert "quality rank correlation" in result.output
    graph = onnx.load(str(out)).graph
    assert any(node.op_type == "QLinearConv" for node in graph.node)
    assert metadata(out)[model_contract.META_PRECISION] == "int8"
    assert "int8 weights" in metadata(out)[model_contract.META_DESCRIPTION]
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[0] == BATCH_AXIS  # the batch axis stays dynamic


def test_int8_export_below_the_rank_bar_writes_nothing(
    mobilefacenet_checkpoint, int8_folders, tmp_path, monkeypatch
):
    from fiqa_cli.export import onnx_export

    _, checkpoint = mobilefacenet_checkpoint
    calibration, parity = int8_folders
    monkeypatch.setattr(onnx_export, "MIN_RANK_CORRELATION", 1.01)  # no model can pass
    out = tmp_path / "int8.onnx"
    with pytest.raises(ExportError, match="does not reproduce"):
        export_checkpoint(checkpoint, out, int8_crops=calibration, parity_images=parity)
    assert not out.exists() and not list(tmp_path.glob("*.partial"))


@pytest.mark.parametrize(
    "options, message",
    [
        ({"fp16": True}, "exclude each other"),
        ({"parity_images": None}, "needs --parity-images"),
    ],
)
def test_int8_export_refuses_what_it_cannot_check(
    mobilefacenet_checkpoint, int8_folders, tmp_path, options, message
):
    _, checkpoint = mobilefacenet_checkpoint
    calibration, parity = int8_folders
    arguments = {"int8_crops": calibration, "parity_images": parity, **options}
    with pytest.raises(ExportError, match=message):
        export_checkpoint(checkpoint, tmp_path / "x.onnx", **arguments)
    few = tmp_path / "few"
    few.mkdir()
    with pytest.raises(FiqaError, match="at least 50"):
        export_checkpoint(checkpoint, tmp_path / "x.onnx", int8_crops=few, parity_images=parity)


def test_rank_correlation_is_spearmans():
    from fiqa_cli.export.quantize import rank_correlation

    assert rank_correlation(np.array([1, 2, 3, 4]), np.array([10, 20, 30, 40])) == pytest.approx(1)
    assert rank_correlation(np.array([1, 2, 3, 4]), np.array([1, 8, 27, 64.0])) == pytest.approx(1)
    assert rank_correlation(np.array([1, 2, 3]), np.array([3, 2, 1])) == pytest.approx(-1)
    # Ties share their average rank: [1, 2.5, 2.5, 4] against [1, 2, 3, 4].
    assert rank_correlation(np.array([1, 2, 2, 4]), np.array([1, 2, 3, 4])) == pytest.approx(
        np.corrcoef([1, 2.5, 2.5, 4], [1, 2, 3, 4])[0, 1]
    )


@pytest.mark.parametrize("bomb", ["config", "stride-0"])
def test_a_checkpoint_claiming_a_huge_layer_is_refused_unallocated(tmp_path, bomb):
    """Issue 30: an embedding_size of 10**11 in the config, or a stride-0 tensor of 10**10
    elements (a few bytes on disk), asked torch for terabytes before the layout check."""
    from limited_run import run_fiqa

    if bomb == "config":
        content = training_checkpoint(create_backbone("mobilefacenet"), embedding_size=10**11)
    else:  # a bare state dict, as official checkpoints are: its size read from the tensor
        content = create_backbone("mobilefacenet").state_dict()
        content["features.weight"] = torch.zeros(1).expand(10**10)
    checkpoint = tmp_path / "bomb.pt"
    torch.save(content, checkpoint)
    assert checkpoint.stat().st_size < 10 * 2**20
    done = run_fiqa(["export", checkpoint, "--out", tmp_path / "bomb.onnx", "--no-parity"])
    stderr = done.stderr.decode()
    assert done.returncode == 1 and "does not fit mobilefacenet" in stderr, stderr[-2000:]
    assert stderr.startswith("Error: ") and stderr.count("\n") == 1
