"""The dlib CR teacher of `fiqa train --cr-teacher dlib` on a handful of shared LFW photos."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from click.testing import CliRunner  # noqa: E402
from lfw_crops import write_centre_crops  # noqa: E402

from fiqa_cli.export import CR_TEACHERS  # noqa: E402
from fiqa_cli.export.image_folder import AlignedCropCache, FaceImageFolder  # noqa: E402
from fiqa_cli.export.teacher import (  # noqa: E402
    DlibTeacher,
    TeacherUnavailable,
    check_teacher_installed,
    dlib_model_files,
)
from fiqa_cli.export.teacher_targets import (  # noqa: E402
    TEACHERS,
    TeacherEmbeddingCache,
    TeacherTargetDataset,
    teacher_certainty_ratios,
)
from fiqa_cli.export.train_cli import train_command  # noqa: E402

IDENTITIES, PER_IDENTITY = 4, 4


def _teacher_missing() -> str | None:
    try:
        check_teacher_installed()
    except TeacherUnavailable as error:
        return str(error)
    return None


needs_teacher = pytest.mark.skipif(
    _teacher_missing() is not None, reason=f"the teacher extra is missing: {_teacher_missing()}"
)


@pytest.fixture(scope="module")
def crops(lfw_images: Path, tmp_path_factory: pytest.TempPathFactory) -> FaceImageFolder:
    root = tmp_path_factory.mktemp("teacher-crops")
    write_centre_crops(lfw_images, root, IDENTITIES, PER_IDENTITY)
    return FaceImageFolder(root, AlignedCropCache(root.parent / "unused-cache"))


@pytest.fixture
def embed_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of crops each call of the teacher embedded."""
    calls: list[int] = []
    embed = DlibTeacher.embed

    def counted(self, crops_rgb):
        calls.append(len(crops_rgb))
        return embed(self, crops_rgb)

    monkeypatch.setattr(DlibTeacher, "embed", counted)
    return calls


def test_cli_teacher_names_match_the_registry() -> None:
    assert set(CR_TEACHERS) == set(TEACHERS)


@needs_teacher
def test_teacher_cr_falls_when_a_face_is_blurred_heavily(crops: FaceImageFolder) -> None:
    from fiqa_cli.export.image_folder import read_crop_rgb

    clean = [read_crop_rgb(crop) for crop, _ in crops.samples]
    blurred = [cv2.GaussianBlur(rgb, (0, 0), 6.0) for rgb in clean]
    teacher = DlibTeacher()
    descriptors = np.stack([teacher.embed(clean), teacher.embed(blurred)], axis=1)
    labels = np.array([label for _, label in crops.samples])
    ratios = teacher_certainty_ratios(descriptors, labels, "paper")
    assert ratios.shape == (len(clean), 2)
    falls = ratios[:, 1] < ratios[:, 0]
    assert falls.mean() >= 0.8, ratios
    assert np.median(ratios[:, 0] - ratios[:, 1]) > 0.05


def test_centred_cr_uses_the_other_photos_and_the_nearest_other_identity() -> None:
    # Two identities of two photos each, in 3-d, already centred (mean zero) and unit length.
    clean = np.array([[1, 0.2, 0], [1, -0.2, 0], [-1, 0, 0.3], [-1, 0, -0.3]])
    clean = clean / np.linalg.norm(clean, axis=1, keepdims=True)
    labels = np.array([0, 0, 1, 1])
    ratios = teacher_certainty_ratios(clean[:, None, :], labels, "paper", centre=False)
    # Photo 0: own centre = photo 1 alone (leave one out); other centre = mean of photos 2, 3.
    other_centre = np.array([-1.0, 0, 0])
    expected = clean[0] @ clean[1] / (clean[0] @ other_centre + 1)
    assert ratios[0, 0] == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="--min-images-per-id 2"):
        teacher_certainty_ratios(clean[:3, None, :], labels[:3], "paper")


@needs_teacher
def test_cached_embeddings_are_reused_on_a_second_run(
    crops: FaceImageFolder, tmp_path: Path, embed_calls: list[int]
) -> None:
    def dataset() -> TeacherTargetDataset:
        return TeacherTargetDataset(
            crops,
            TeacherEmbeddingCache(tmp_path / "cache", "dlib"),
            variants=1,
            degradation_fraction=0.5,
            cr_formula="paper",
        )

    first = dataset()
    assert sum(embed_calls) == 2 * len(crops)  # each photo clean and one degraded variant
    second = dataset()
    assert sum(embed_calls) == 2 * len(crops)  # nothing embedded again
    np.testing.assert_array_equal(first.targets, second.targets)
    # A crop whose pixels change is a new photo: its two variants alone are embedded again.
    changed = crops.samples[0][0]
    original = changed.read_bytes()
    try:
        cv2.imwrite(str(changed), cv2.flip(cv2.imread(str(changed)), 1))
        dataset()
    finally:
        changed.write_bytes(original)
    assert embed_calls[-1] == 2

    torch.manual_seed(0)
    items = [first[i] for i in range(len(first))]
    (tensor, degraded, target), label = items[0]
    assert tensor.shape == (3, 112, 112) and label == crops.samples[0][1]
    for item, ((_, degraded, target), _) in enumerate(items):
        variant = 1 if degraded else 0
        assert target.item() == pytest.approx(first.targets[item, variant])
    assert 0 < sum(degraded for (_, degraded, _), _ in items) < len(items)


@needs_teacher
def test_training_regresses_the_quality_head_on_the_teacher_cr(
    crops: FaceImageFolder, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    result = CliRunner().invoke(
        train_command,
        [str(a) for a in (
            "--data", crops.root, "--out", run_dir, "--arch", "mobilefacenet",
            "--batch-size", 16, "--epochs", 1, "--max-steps", 1, "--num-workers", 0,
            "--log-every", 1, "--cr-teacher", "dlib", "--teacher-variants", 1,
            "--augment-degradations", 0.3,
        )],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (record,) = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    # An untrained head's own centres give CR near 0; the teacher's are far from it.
    cached = TeacherTargetDataset(
        crops,
        TeacherEmbeddingCache(run_dir / "teacher-embeddings", "dlib"),
        variants=1,
        degradation_fraction=0.3,
        cr_formula="paper",
    )
    assert cached.targets.min() <= record["mean_cr"] <= cached.targets.max()
    assert record["mean_cr"] > 0.1
    config = torch.load(run_dir / "checkpoint.pt", weights_only=True)["config"]
    assert config["cr_teacher"] == "dlib" and config["teacher_variants"] == 1
    # Resuming without the teacher would change the target mid-run.
    refused = CliRunner().invoke(
        train_command,
        ["--data", str(crops.root), "--out", str(run_dir), "--arch", "mobilefacenet",
         "--batch-size", "16", "--num-workers", "0", "--resume"],
    )  # fmt: skip
    assert refused.exit_code == 1
    assert "Error: cannot resume" in refused.output
    assert "cr_teacher was 'dlib', now None" in refused.output


def test_missing_extra_is_named(
    crops: FaceImageFolder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "dlib", None)  # import dlib now raises ImportError
    result = CliRunner().invoke(
        train_command,
        ["--data", str(crops.root), "--out", str(tmp_path / "run"), "--cr-teacher", "dlib"],
    )
    assert result.exit_code == 1
    assert "the dlib teacher needs the `teacher` extra" in result.output
    assert "pip install 'fiqa[teacher]'" in result.output
    assert not (tmp_path / "run").exists()

    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(TeacherUnavailable, match="`teacher` extra: face-recognition-models"):
        dlib_model_files()
