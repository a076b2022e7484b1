"""Short real training runs on LFW faces: loss goes down, checkpoints resume, DDP stays in sync."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from click.testing import CliRunner  # noqa: E402
from lfw_crops import largest_identities, write_centre_crops  # noqa: E402

from fiqa_cli.export import ARCHITECTURES  # noqa: E402
from fiqa_cli.export.augment import DEGRADATIONS, TrainTransform  # noqa: E402
from fiqa_cli.export.backbones import BACKBONES, create_backbone  # noqa: E402
from fiqa_cli.export.image_folder import AlignedCropCache, FaceImageFolder  # noqa: E402
from fiqa_cli.export.train import (  # noqa: E402
    PairVerification,
    cross_validated_accuracy,
    lr_factor,
)
from fiqa_cli.export.train_cli import train_command  # noqa: E402

IDENTITIES = 6
IMAGES_PER_IDENTITY = 8


@pytest.fixture(scope="module")
def crop_folder(lfw_images: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("crops")
    write_centre_crops(lfw_images, root, IDENTITIES, IMAGES_PER_IDENTITY)
    return root


def write_pairs(root: Path, path: Path) -> Path:
    """An LFW pairs file over `root`: each identity's images 1-2 and 3-4, and impostor pairs."""
    names = sorted(d.name for d in root.iterdir())
    genuine = [f"{name}\t{i}\t{i + 1}" for name in names for i in (1, 3)]
    impostor = [f"{a}\t1\t{b}\t2" for a, b in zip(names, names[1:] + names[:1], strict=True)]
    path.write_text(f"{len(genuine)}\n" + "\n".join(genuine + impostor * 2) + "\n")
    return path


def run_cli(*arguments: str) -> None:
    result = CliRunner().invoke(train_command, [str(a) for a in arguments], catch_exceptions=False)
    assert result.exit_code == 0, result.output


def read_log(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]


def test_a_short_run_lowers_the_loss(crop_folder: Path, tmp_path: Path) -> None:
    from fiqa_cli.export.checkpoint import load_backbone

    run_dir = tmp_path / "run"
    pairs = write_pairs(crop_folder, tmp_path / "pairs.txt")
    # lr 0.3 at the reference batch of 512 is 0.009 at this batch of 16.
    run_cli(
        "--data", crop_folder, "--out", run_dir, "--arch", "mobilefacenet", "--batch-size", 16,
        "--lr", 0.3, "--epochs", 20, "--max-steps", 30, "--num-workers", 0, "--log-every", 1,
        "--val-pairs", pairs, "--val-root", crop_folder, "--eval-every", 15,
    )  # fmt: skip

    log = read_log(run_dir)
    steps = [record for record in log if "loss" in record]
    assert [record["step"] for record in steps] == list(range(1, 31))
    first, last = steps[:5], steps[-5:]
    assert np.mean([r["loss"] for r in last]) < 0.9 * np.mean([r["loss"] for r in first])
    assert np.mean([r["ce"] for r in last]) < np.mean([r["ce"] for r in first])
    assert all(r["images_per_s"] > 0 and np.isfinite(r["quality_loss"]) for r in steps)
    # Every record carries its wall-clock time (UTC), in order: where a run's time went.
    times = [datetime.fromisoformat(record["time"]) for record in log]
    assert times == sorted(times) and all(t.utcoffset() == timedelta(0) for t in times)
    evaluations = [record for record in log if "val_accuracy" in record]
    assert [record["step"] for record in evaluations] == [15, 30]
    assert all(0.0 <= record["val_accuracy"] <= 1.0 for record in evaluations)

    checkpoint = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    assert (checkpoint["format"], checkpoint["step"], checkpoint["epoch"]) == (
        "fiqa-checkpoint",
        30,
        10,
    )
    config = checkpoint["config"]
    assert config["num_classes"] == IDENTITIES and config["cr_formula"] == "paper"
    assert config["mean"] == [0.5, 0.5, 0.5] and len(config["dataset_fingerprint"]) == 64
    assert checkpoint["head"]["kernel"].shape == (512, IDENTITIES)
    loaded = load_backbone(run_dir / "checkpoint.pt")
    assert loaded.architecture == "mobilefacenet"
    for name, tensor in loaded.model.state_dict().items():
        assert torch.equal(tensor, checkpoint["backbone"][name])
    # The logged accuracy is that of the saved weights, recomputed from scratch.
    verification = PairVerification(pairs, crop_folder, AlignedCropCache(run_dir / "re", "auto"))
    recomputed = verification.accuracy(loaded.model, torch.device("cpu"))
    assert recomputed == pytest.approx(evaluations[-1]["val_accuracy"], abs=1e-9)


def test_resume_continues_step_counter_and_schedule(crop_folder: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    # 48 images / batch 8 = 6 steps per epoch, 12 in all; the lr drops tenfold at step 6.
    common = [
        "--data", crop_folder, "--out", run_dir, "--arch", "mobilefacenet", "--batch-size", 8,
        "--epochs", 2, "--lr-milestones", "6/12", "--num-workers", 0, "--log-every", 1,
        "--save-every", 2, "--quality-head-lr", 0.25,
    ]  # fmt: skip
    run_cli(*common, "--max-steps", 4)
    assert torch.load(run_dir / "checkpoint.pt", weights_only=True)["step"] == 4
    run_cli(*common, "--max-steps", 8, "--resume")

    checkpoint = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    assert (checkpoint["step"], checkpoint["epoch"]) == (8, 1)
    base_lr = 0.1 * 8 / 512
    # Step s (counted from 1) trains with the lr of schedule position s - 1.
    expected = [base_lr * lr_factor(s, warmup_steps=0, milestone_steps=[6]) for s in range(8)]
    log = read_log(run_dir)
    assert [record["step"] for record in log] == list(range(1, 9))
    np.testing.assert_allclose([record["lr"] for record in log], expected)
    # The quality head (weight and bias) steps at a quarter of the rest's lr, through the drop.
    assert checkpoint["scheduler"]["_last_lr"] == pytest.approx([base_lr * 0.1, base_lr * 0.025])
    assert len(checkpoint["optimizer"]["param_groups"][1]["params"]) == 2

    arguments = [str(a) for a in (*common, "--arch", "iresnet18", "--resume")]
    refused = CliRunner().invoke(train_command, arguments)
    assert refused.exit_code == 1
    assert "Error: cannot resume" in refused.output
    assert "arch was 'mobilefacenet', now 'iresnet18'" in refused.output


@pytest.mark.parametrize("milestones", ["0.5,x", "20/0", "3/2", "0"])
def test_bad_lr_milestones_are_usage_errors(milestones: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        train_command, ["--data", str(tmp_path), "--out", str(tmp_path / "run"),
                        "--lr-milestones", milestones]
    )  # fmt: skip
    assert result.exit_code == 2
    assert "--lr-milestones" in result.output


def test_warmup_then_milestones() -> None:
    factors = [lr_factor(s, warmup_steps=4, milestone_steps=[6, 8]) for s in range(10)]
    assert factors == pytest.approx([0.25, 0.5, 0.75, 1, 1, 1, 0.1, 0.1, 0.01, 0.01])


def test_raw_photos_are_aligned_once_and_cached(
    lfw_images: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "photos"
    for person in largest_identities(lfw_images, 3):
        (root / person.name).mkdir(parents=True)
        for photo in sorted(person.glob("*.jpg"))[:2]:
            shutil.copy(photo, root / person.name)
    cache = AlignedCropCache(tmp_path / "cache", "mtcnn")
    dataset = FaceImageFolder(root, cache, min_images_per_id=2)
    assert dataset.num_classes == 3 and len(dataset) == 6
    assert all(crop.parent == tmp_path / "cache" / "mtcnn" for crop, _ in dataset.samples)
    rgb, label = dataset[5]
    assert rgb.shape == (112, 112, 3) and label == 2

    # A second pass (another epoch's run, another rank) must not detect again.
    import fiqa_cli.runtime.detect

    def no_detection(*args, **kwargs):
        raise AssertionError("the cache was bypassed")

    monkeypatch.setattr(fiqa_cli.runtime.detect, "create_detector", no_detection)
    again = FaceImageFolder(root, AlignedCropCache(tmp_path / "cache", "mtcnn"))
    assert again.samples == dataset.samples and again.fingerprint == dataset.fingerprint
    with pytest.raises(ValueError, match="3 or more images"):
        FaceImageFolder(root, cache, min_images_per_id=3)


def test_transform_flips_degrades_and_normalises(lfw_images: Path) -> None:
    photo = sorted(next(iter(largest_identities(lfw_images, 1))).glob("*.jpg"))[0]
    rgb = cv2.resize(cv2.imread(str(photo))[69:181, 69:181], (112, 112))
    for degrade in DEGRADATIONS:
        degraded = degrade(rgb, 0.7)
        assert degraded.shape == rgb.shape and degraded.dtype == np.uint8
        assert np.abs(degraded.astype(int) - rgb).mean() > 1.0, degrade.__name__
    torch.manual_seed(0)
    transformed = [TrainTransform()(rgb) for _ in range(20)]
    assert not any(degraded for _, degraded in transformed)
    tensors = [tensor for tensor, _ in transformed]
    plain = (torch.from_numpy(rgb).permute(2, 0, 1).float() / 127.5) - 1.0
    flipped = plain.flip(2)
    assert all(torch.allclose(t, plain) or torch.allclose(t, flipped) for t in tensors)
    assert any(torch.allclose(t, flipped) for t in tensors)
    assert any(torch.allclose(t, plain) for t in tensors)
    always = [TrainTransform(degradation_fraction=1.0)(rgb) for _ in range(5)]
    assert all(degraded for _, degraded in always)
    assert not any(torch.allclose(t, plain) or torch.allclose(t, flipped) for t, _ in always)


def test_cross_validated_accuracy() -> None:
    same = np.array([True, False] * 20)
    assert cross_validated_accuracy(np.where(same, 0.8, 0.1), same) == 1.0
    assert cross_validated_accuracy(np.where(same, 0.1, 0.8), same) <= 0.5


def test_cli_offers_every_registered_backbone() -> None:
    assert set(ARCHITECTURES) == set(BACKBONES)


def test_module_entry_point_shares_the_cli_options() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "fiqa_cli.export.train", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--cr-formula [paper|released]" in result.stdout
    assert "--augment-degradations" in result.stdout


DDP_SCRIPT = """
import os, sys, torch
from pathlib import Path
from fiqa_cli.export.train import TrainConfig, train

data, out = Path(sys.argv[1]), Path(sys.argv[2])
# Half the samples degraded and left out of the classifier: the masked loss must keep DDP's
# gradients in step even when a rank has no classified sample.
backbone = train(TrainConfig(data=data, out=out, arch="mobilefacenet", batch_size=4,
                             epochs=1, max_steps=4, num_workers=0, log_every=1,
                             augment_degradations=0.5, classify_degraded=False))
torch.save(dict(backbone.named_parameters()), out / f"rank{os.environ['RANK']}.pt")
"""


def test_two_process_gloo_run_keeps_weights_identical(crop_folder: Path, tmp_path: Path) -> None:
    script = tmp_path / "ddp_train.py"
    script.write_text(textwrap.dedent(DDP_SCRIPT))
    run_dir = tmp_path / "run"
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
         "--standalone", str(script), str(crop_folder), str(run_dir)],
        check=True, env=environment, timeout=300,
    )  # fmt: skip
    rank0 = torch.load(run_dir / "rank0.pt", weights_only=True)
    rank1 = torch.load(run_dir / "rank1.pt", weights_only=True)
    assert rank0.keys() == rank1.keys()
    for name in rank0:
        assert torch.equal(rank0[name], rank1[name]), name
    # Rank 0 alone logs and checkpoints: one record per step, 2 processes x 4 images per step.
    log = read_log(run_dir)
    assert [record["step"] for record in log] == [1, 2, 3, 4]
    checkpoint = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    assert checkpoint["step"] == 4 and checkpoint["config"]["total_batch"] == 8
    assert all(torch.equal(checkpoint["backbone"][name], rank0[name]) for name in rank0)
    # ... and the weights did move: the agreement is not that of two untouched copies.
    torch.manual_seed(0)
    initial = dict(create_backbone("mobilefacenet").named_parameters())
    assert any(not torch.equal(initial[name], rank0[name]) for name in rank0)


def test_identities_of_different_roots_never_merge(crop_folder: Path, tmp_path: Path) -> None:
    """Two roots that both hold a folder of the same name: two identities, not one."""
    from fiqa_cli.export.multi_root import MultiRootImageFolder, image_folders

    first_name, second_name = sorted(d.name for d in crop_folder.iterdir())[:2]
    other_root = tmp_path / "other"
    # The other root's folder called `first_name` holds someone else's photos.
    shutil.copytree(crop_folder / second_name, other_root / first_name)
    cache = AlignedCropCache(tmp_path / "cache")
    alone = FaceImageFolder(crop_folder, cache)
    both = image_folders([crop_folder, other_root], cache)
    assert isinstance(both, MultiRootImageFolder)
    assert both.num_classes == IDENTITIES + 1 and len(both) == len(alone) + IMAGES_PER_IDENTITY
    assert both.identities[-1] == str(other_root / first_name)
    assert both.identities.count(str(crop_folder / first_name)) == 1
    labels_by_root = {
        root: {label for crop, label in both.samples if crop.parent.parent == root}
        for root in (crop_folder, other_root)
    }
    assert labels_by_root[other_root] == {IDENTITIES}
    assert labels_by_root[crop_folder] == set(range(IDENTITIES))
    for item in (0, len(alone) - 1, len(alone), len(both) - 1):
        rgb, label = both[item]
        assert label == both.samples[item][1] and rgb.shape == (112, 112, 3)
    # One root stays the dataset it was: runs trained before several roots existed resume.
    assert image_folders([crop_folder], cache).fingerprint == alone.fingerprint
    assert both.fingerprint != alone.fingerprint

    run_dir = tmp_path / "run"
    run_cli(
        "--data", crop_folder, "--data", other_root, "--out", run_dir, "--arch", "mobilefacenet",
        "--batch-size", 8, "--epochs", 1, "--max-steps", 2, "--num-workers", 0,
    )  # fmt: skip
    config = torch.load(run_dir / "checkpoint.pt", weights_only=True)["config"]
    assert config["num_classes"] == IDENTITIES + 1
    assert config["data"] == [str(crop_folder), str(other_root)]


def test_resumed_run_equals_a_straight_run(crop_folder: Path, tmp_path: Path) -> None:
    """8 steps straight, and 3 steps then a resumed 5 (from the middle of epoch 0 into epoch 1),
    train the same weights with the same per-step losses: a resume that re-initialised a
    weight, lost the optimiser's momentum, restarted the epoch or drew other augmentations and
    dropout masks would differ."""
    from fiqa_cli.export.train import TrainConfig, train

    def config(out: Path, max_steps: int, resume: bool = False) -> TrainConfig:
        # 48 images / batch 8: 6 steps per epoch. Degradations and dropout draw random numbers.
        return TrainConfig(
            data=crop_folder, out=out, arch="mobilefacenet", batch_size=8, epochs=2,
            max_steps=max_steps, resume=resume, num_workers=0, log_every=1, seed=3,
            augment_degradations=0.5,
        )  # fmt: skip

    straight = train(config(tmp_path / "straight", 8))
    train(config(tmp_path / "resumed", 3))
    resumed = train(config(tmp_path / "resumed", 8, resume=True))

    losses = [
        (r["step"], r["loss"], r["ce"], r["quality_loss"]) for r in read_log(tmp_path / "straight")
    ]
    assert [r[0] for r in losses] == list(range(1, 9))
    assert [
        (r["step"], r["loss"], r["ce"], r["quality_loss"]) for r in read_log(tmp_path / "resumed")
    ] == losses
    for name, tensor in straight.state_dict().items():
        assert torch.equal(tensor, resumed.state_dict()[name]), name
    ends = [
        torch.load(tmp_path / run / "checkpoint.pt", weights_only=True)
        for run in ("straight", "resumed")
    ]
    assert torch.equal(ends[0]["head"]["kernel"], ends[1]["head"]["kernel"])


def test_checkpoint_keeps_package_versions_and_a_resume_names_a_change(
    crop_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The checkpoint records the versions of the packages that decide what a run trains; a
    resume in the same install is silent, one in another says what changed and keeps the
    versions the run started with."""
    from fiqa_cli.export.train import TrainConfig, train

    def resumed_to(max_steps: int, resume: bool = True) -> str:
        capsys.readouterr()
        train(
            TrainConfig(
                data=crop_folder, out=tmp_path, arch="mobilefacenet", batch_size=8, epochs=1,
                max_steps=max_steps, resume=resume, num_workers=0, log_every=1,
            )
        )  # fmt: skip
        return capsys.readouterr().err

    resumed_to(1, resume=False)
    path = tmp_path / "checkpoint.pt"
    packages = torch.load(path, weights_only=True)["packages"]
    assert (packages["torch"], packages["numpy"]) == (torch.__version__, np.__version__)
    assert "warning: resuming" not in resumed_to(2)

    checkpoint = torch.load(path, weights_only=True)
    checkpoint["packages"]["numpy"] = "1.0.0"
    torch.save(checkpoint, path)
    assert f"numpy {np.__version__} (was 1.0.0)" in resumed_to(3)
    assert torch.load(path, weights_only=True)["packages"]["numpy"] == "1.0.0"


def test_no_classify_degraded_leaves_degraded_samples_out_of_the_cross_entropy(
    crop_folder: Path, tmp_path: Path
) -> None:
    """Every sample degraded and none classified: the logged cross-entropy is exactly 0,
    while the quality head still trains."""
    from fiqa_cli.export.train import TrainConfig, train

    out = tmp_path / "run"
    train(
        TrainConfig(
            data=crop_folder, out=out, arch="mobilefacenet", batch_size=8, epochs=1,
            max_steps=2, num_workers=0, log_every=1, augment_degradations=1.0,
            classify_degraded=False,
        )
    )  # fmt: skip
    log = read_log(out)
    assert [record["step"] for record in log] == [1, 2]
    assert all(record["ce"] == 0.0 and record["quality_loss"] > 0 for record in log)
