"""Train a CR-FIQA model. One file, read top to bottom: config, data, model, loss, optimiser,
schedule, resume, loop (with logging, evaluation and checkpoints).

One process (CPU or one GPU):  fiqa train --data DATA --arch mobilefacenet --out runs/mfn
Data parallel, N processes:    torchrun --nproc_per_node N -m fiqa_cli.export.train --data ...
Both take the options of fiqa_cli.export.train_cli. Under torchrun every process trains on its
own shard of each epoch and DDP averages the gradients; rank 0 alone logs and writes checkpoints.

DATA is either an insightface RecordIO pack (a folder with train.rec and train.idx) or one or
more image folders ROOT/IDENTITY/*.jpg (see image_folder.py, multi_root.py). With a CR teacher
(teacher_targets.py) the quality head's targets come from a second recogniser instead.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler

from fiqa_cli import model_contract
from fiqa_cli.errors import FiqaError
from fiqa_cli.evaluation.lfw_pairs import read_lfw_pairs
from fiqa_cli.export.augment import TrainTransform, to_input_tensor
from fiqa_cli.export.backbones import create_backbone
from fiqa_cli.export.checkpoint import FIQA_CHECKPOINT_FORMAT, FORMAT_VERSION
from fiqa_cli.export.config import REFERENCE_BATCH, TrainConfig
from fiqa_cli.export.image_folder import (
    AlignedCropCache,
    aligned_crops,
    read_crop_rgb,
)
from fiqa_cli.export.loss import CRFIQALoss, LossParts
from fiqa_cli.export.multi_root import image_folders
from fiqa_cli.export.recordio import RecordIODataset
from fiqa_cli.runtime.packages import installed_versions
from fiqa_cli.runtime.safe_write import replacing

CHECKPOINT_NAME = "checkpoint.pt"
TEACHER_CACHE = "teacher-embeddings"
LOG_NAME = "log.jsonl"


class TrainingError(FiqaError, ValueError):
    """A training run cannot start or resume as configured; the message says why."""


# ----------------------------------------------------------------------------------------------
# Data


def is_recordio(root: Path) -> bool:
    return (root / "train.rec").is_file() and (root / "train.idx").is_file()


def load_dataset(config: TrainConfig, crop_cache: AlignedCropCache):
    """The training samples: ((input, degraded[, CR target]), label) items."""
    transform = TrainTransform(config.augment_degradations)
    if any(is_recordio(root) for root in config.data):
        if len(config.data) > 1 or config.cr_teacher:
            raise TrainingError(
                "a RecordIO pack trains alone and without a CR teacher: "
                "several --data roots and --cr-teacher need image folders"
            )
        return RecordIODataset(config.data[0], transform)
    dataset = image_folders(
        config.data, crop_cache, min_images_per_id=config.min_images_per_id, transform=transform
    )
    if config.cr_teacher is None:
        return dataset
    from fiqa_cli.export.teacher_targets import TeacherEmbeddingCache, TeacherTargetDataset

    return TeacherTargetDataset(
        dataset,
        TeacherEmbeddingCache(config.out / TEACHER_CACHE, config.cr_teacher),
        variants=config.teacher_variants,
        degradation_fraction=config.augment_degradations,
        cr_formula=config.cr_formula,
    )


# ----------------------------------------------------------------------------------------------
# Model: the backbone and the loss (which holds the ArcFace centres) in one module, so that DDP
# synchronises the gradients of both


class BackboneWithLoss(nn.Module):
    def __init__(self, backbone: nn.Module, loss: CRFIQALoss) -> None:
        super().__init__()
        self.backbone = backbone
        self.loss = loss

    def forward(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        classified: torch.Tensor | None = None,
        cr_target: torch.Tensor | None = None,
    ) -> LossParts:
        embeddings, quality = self.backbone(images)
        return self.loss(embeddings, quality, labels, classified, cr_target)


def lr_factor(step: int, *, warmup_steps: int, milestone_steps: list[int]) -> float:
    """Linear warmup, then a tenth of the lr for each milestone passed."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    return 0.1 ** sum(step >= milestone for milestone in milestone_steps)


# ----------------------------------------------------------------------------------------------
# Verification on LFW-style pairs with the model's own embeddings


class PairVerification:
    def __init__(self, pairs_path: Path, image_root: Path, crop_cache: AlignedCropCache) -> None:
        pairs = read_lfw_pairs(pairs_path, image_root)
        crops = aligned_crops(sorted({image for a, b, _ in pairs for image in (a, b)}), crop_cache)
        kept = [(a, b, same) for a, b, same in pairs if a in crops and b in crops]
        if not kept:
            raise TrainingError(f"no pair of {pairs_path} has faces in both images")
        position = {image: i for i, image in enumerate(crops)}
        self.images = torch.from_numpy(np.stack([read_crop_rgb(crop) for crop in crops.values()]))
        self.pairs = torch.tensor([(position[a], position[b]) for a, b, _ in kept])
        self.same = np.array([same for _, _, same in kept])
        self.skipped = len(pairs) - len(kept)

    @torch.no_grad()
    def accuracy(self, backbone: nn.Module, device: torch.device, batch_size: int = 128) -> float:
        was_training = backbone.training
        backbone.eval()
        embeddings = torch.cat(
            [
                backbone(torch.stack([to_input_tensor(rgb.numpy()) for rgb in chunk]).to(device))[0]
                for chunk in self.images.split(batch_size)
            ]
        )
        backbone.train(was_training)
        embeddings = nn.functional.normalize(embeddings.float(), dim=1).cpu()
        scores = (embeddings[self.pairs[:, 0]] * embeddings[self.pairs[:, 1]]).sum(1).numpy()
        return cross_validated_accuracy(scores, self.same)


def cross_validated_accuracy(scores: np.ndarray, same: np.ndarray, folds: int = 10) -> float:
    """LFW protocol: the threshold is chosen on nine folds and tested on the tenth."""
    fold_of = np.arange(len(scores)) % folds
    accuracies = []
    for fold in range(min(folds, len(scores))):
        train, test = fold_of != fold, fold_of == fold
        thresholds = np.unique(scores[train]) if train.any() else scores[test]
        correct = (scores[train][None, :] >= thresholds[:, None]) == same[train][None, :]
        threshold = thresholds[int(np.argmax(correct.mean(axis=1)))] if train.any() else 0.0
        accuracies.append(float(((scores[test] >= threshold) == same[test]).mean()))
    return float(np.mean(accuracies))


# ----------------------------------------------------------------------------------------------
# Checkpoints: plain containers and tensors only, so torch.load(weights_only=True) reads them


# The packages whose versions decide what a run trains: crops are aligned with onnxruntime,
# OpenCV and scikit-image (insightface's transform), training is torch and numpy. Two runs of one
# command and seed in different sessions, each with a fresh install and crop cache, did not train
# the same network (models/README.md, v10).
RUN_PACKAGES = (
    "torch",
    "numpy",
    "opencv-python",
    "onnxruntime",
    "onnxruntime-gpu",
    "insightface",
    "scikit-image",
)


def changed_packages(saved: dict[str, str | None], current: dict[str, str | None]) -> list[str]:
    """'NAME NOW (was THEN)' for each run package whose version is not the one `saved` names
    (None: not installed)."""
    return [
        f"{name} {current.get(name) or 'absent'} (was {saved.get(name) or 'absent'})"
        for name in sorted(saved.keys() | current.keys())
        if saved.get(name) != current.get(name)
    ]


def checkpoint_config(config: TrainConfig, dataset) -> dict:
    plain = {
        key: str(value)
        if isinstance(value, Path)
        else [str(item) if isinstance(item, Path) else item for item in value]
        if isinstance(value, tuple)
        else value
        for key, value in dataclasses.asdict(config).items()
    }
    return (
        plain
        | model_contract.preprocessing()
        | {
            "dataset_fingerprint": dataset.fingerprint,
            "num_classes": dataset.num_classes,
        }
    )


# A resumed run must see the same model, data and total batch, or its schedule means nothing.
RESUME_MUST_MATCH = (
    "arch",
    "embedding_size",
    "num_classes",
    "dataset_fingerprint",
    "cr_formula",
    "cr_teacher",
    "teacher_variants",
    "total_batch",
)


def save_checkpoint(path: Path, checkpoint: dict) -> None:
    # Renamed into place: a crash mid-save leaves the previous checkpoint intact.
    with replacing(path) as written:
        torch.save(checkpoint, written)


def append_log(run_dir: Path, record: dict) -> None:
    # The wall-clock time of each record shows where a run's time went outside its steps (an
    # H200 run lost about 400 s before its first step, and no log said where).
    stamped = {**record, "time": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    with open(run_dir / LOG_NAME, "a") as log:
        log.write(json.dumps(stamped) + "\n")


# ----------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Processes:
    """This process's place in the run: torchrun sets RANK/LOCAL_RANK/WORLD_SIZE; without
    them, a single process."""

    distributed: bool
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def start_processes() -> Processes:
    distributed = "RANK" in os.environ
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if torch.cuda.is_available():
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if distributed:
        backend = "nccl" if device.type == "cuda" else "gloo"
        # Rank 0 may spend long aligning a raw-photo folder while the others wait. NCCL is told
        # its GPU: left to guess it from the rank, it warns that it can hang where ranks and
        # GPUs are mapped unevenly.
        dist.init_process_group(
            backend,
            timeout=timedelta(hours=4),
            device_id=device if device.type == "cuda" else None,
        )
    rank = dist.get_rank() if distributed else 0
    world_size = dist.get_world_size() if distributed else 1
    return Processes(distributed, rank, world_size, local_rank, device)


@dataclasses.dataclass(frozen=True)
class Data:
    dataset: object  # ((input, degraded[, CR target]), label) items
    validation: PairVerification | None  # the main process's, with --val-pairs
    sampler: DistributedSampler
    steps_per_epoch: int
    total_steps: int
    stop_step: int  # total_steps, or --max-steps when fewer


def load_data(config: TrainConfig, processes: Processes) -> Data:
    """The samples, this process's shard of each epoch and the run's length in steps. Rank 0
    aligns raw photos first; the other ranks then read its cache."""
    crop_cache = AlignedCropCache(
        config.out / "aligned-crops", config.detector, config.detector_model, config.faces
    )
    distributed, is_main = processes.distributed, processes.is_main
    if distributed and not is_main:
        dist.barrier()
    dataset = load_dataset(config, crop_cache)
    validation = (
        PairVerification(config.val_pairs, config.val_root, crop_cache)
        if config.val_pairs and is_main
        else None
    )
    if distributed and is_main:
        dist.barrier()
    sampler = DistributedSampler(
        dataset, processes.world_size, processes.rank, shuffle=True, seed=config.seed
    )
    steps_per_epoch = len(sampler) // config.batch_size
    if steps_per_epoch == 0:
        raise TrainingError(
            f"{len(dataset)} images are fewer than one batch of {config.batch_size} per process"
        )
    total_steps = steps_per_epoch * config.epochs
    stop_step = min(total_steps, config.max_steps or total_steps)
    return Data(dataset, validation, sampler, steps_per_epoch, total_steps, stop_step)


@dataclasses.dataclass(frozen=True)
class Model:
    """The backbone and loss, and what steps them: optimiser, schedule, mixed precision."""

    backbone: nn.Module
    loss: CRFIQALoss
    model: BackboneWithLoss
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    use_amp: bool
    amp_dtype: torch.dtype
    total_batch: int  # images per optimiser step over all processes


def build_model(config: TrainConfig, data: Data, processes: Processes) -> Model:
    """Model and loss; SGD with a per-step schedule (stepped once per optimiser step)."""
    backbone = create_backbone(
        config.arch, dropout=config.dropout, embedding_size=config.embedding_size
    )
    loss = CRFIQALoss(
        config.embedding_size,
        data.dataset.num_classes,
        scale=config.scale,
        margin=config.margin,
        quality_weight=config.quality_weight,
        cr_formula=config.cr_formula,
    )
    device = processes.device
    model = BackboneWithLoss(backbone, loss).to(device).train()

    total_batch = config.batch_size * processes.world_size
    lr = config.lr * total_batch / REFERENCE_BATCH
    quality_head = list(backbone.qs.parameters())
    quality_head_ids = {id(parameter) for parameter in quality_head}
    rest = [parameter for parameter in model.parameters() if id(parameter) not in quality_head_ids]
    optimizer = torch.optim.SGD(
        [{"params": rest}, {"params": quality_head, "lr": lr * config.quality_head_lr}],
        lr=lr,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
    )
    warmup_steps = round(config.warmup_epochs * data.steps_per_epoch)
    milestone_steps = [round(fraction * data.total_steps) for fraction in config.lr_milestones]
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: lr_factor(step, warmup_steps=warmup_steps, milestone_steps=milestone_steps),
    )
    # Mixed precision on GPUs: bfloat16 where supported; float16 needs loss scaling.
    use_amp = device.type == "cuda"
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler(device.type, enabled=use_amp and amp_dtype == torch.float16)
    return Model(
        backbone, loss, model, optimizer, scheduler, scaler, use_amp, amp_dtype, total_batch
    )


def resume_run(
    config: TrainConfig,
    parts: Model,
    config_record: dict,
    installed: dict[str, str | None],
    processes: Processes,
) -> tuple[int, dict[str, str | None]]:
    """Weights, optimiser momentum, schedule position, random state and step counter from the
    run's checkpoint, whose config must match this run's: the step to continue at, and the
    package versions the run started with."""
    checkpoint_path = config.out / CHECKPOINT_NAME
    if not checkpoint_path.is_file():
        raise TrainingError(f"cannot resume: no checkpoint at {checkpoint_path}")
    device = processes.device
    checkpoint = torch.load(checkpoint_path, map_location=device, weights_only=True)
    saved = checkpoint["config"]
    # Checkpoints from before the CR teacher existed lack its keys: they trained without one.
    saved = {"cr_teacher": None, "teacher_variants": TrainConfig.teacher_variants} | saved
    for key in RESUME_MUST_MATCH:
        if saved[key] != config_record[key]:
            raise TrainingError(
                f"cannot resume {checkpoint_path}: {key} was {saved[key]!r}, "
                f"now {config_record[key]!r}"
            )
    parts.backbone.load_state_dict(checkpoint["backbone"])
    parts.loss.head.load_state_dict(checkpoint["head"])
    try:
        parts.optimizer.load_state_dict(checkpoint["optimizer"])
    except ValueError as error:  # fiqa before the quality head had its own parameter group
        raise TrainingError(
            f"cannot resume {checkpoint_path}: its optimiser state does not fit ({error})"
        ) from error
    parts.scheduler.load_state_dict(checkpoint["scheduler"])
    parts.scaler.load_state_dict(checkpoint["grad_scaler"])
    # Checkpoints from before the versions were recorded lack them: nothing to compare.
    run_packages = checkpoint.get("packages", installed)
    changed = changed_packages(run_packages, installed)
    if changed and processes.is_main:
        print(
            f"warning: resuming with other package versions than the run started with: "
            f"{', '.join(changed)}; the resumed steps need not train what an uninterrupted "
            "run would have",
            file=sys.stderr,
        )
    # Dropout and, in the main process, augmentation draw from these generators: restored,
    # the resumed steps draw what an uninterrupted run would have drawn.
    if "rng_state" in checkpoint:  # checkpoints written before it was saved lack it
        torch.set_rng_state(checkpoint["rng_state"].cpu())
        if device.type == "cuda":
            torch.cuda.set_rng_state(checkpoint["cuda_rng_state"].cpu(), device)
    return checkpoint["step"], run_packages


def checkpoint_of(
    parts: Model,
    step: int,
    data: Data,
    config_record: dict,
    run_packages: dict[str, str | None],
    device: torch.device,
) -> dict:
    """What a checkpoint holds after `step` steps (plain containers and tensors only)."""
    return {
        "format": FIQA_CHECKPOINT_FORMAT,
        "format_version": FORMAT_VERSION,
        "backbone": parts.backbone.state_dict(),
        "head": parts.loss.head.state_dict(),
        "optimizer": parts.optimizer.state_dict(),
        "scheduler": parts.scheduler.state_dict(),
        "grad_scaler": parts.scaler.state_dict(),
        "step": step,
        "epoch": step // data.steps_per_epoch,  # completed epochs
        "rng_state": torch.get_rng_state(),
        "cuda_rng_state": torch.cuda.get_rng_state(device)
        if device.type == "cuda"
        else torch.empty(0, dtype=torch.uint8),
        "config": config_record,
        "packages": run_packages,
    }


def train(config: TrainConfig) -> nn.Module:
    """Train as `config` says; returns the trained backbone (this process's replica)."""
    # -- processes
    processes = start_processes()
    device, is_main = processes.device, processes.is_main
    config.out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)  # same initial weights on every rank

    # -- data: rank 0 aligns raw photos first, the other ranks then read its cache
    data = load_data(config, processes)
    dataset, validation, sampler = data.dataset, data.validation, data.sampler
    steps_per_epoch, total_steps, stop_step = data.steps_per_epoch, data.total_steps, data.stop_step

    # -- model, loss, optimiser and schedule
    parts = build_model(config, data, processes)
    backbone = parts.backbone

    # -- resume
    config_record = checkpoint_config(config, dataset) | {"total_batch": parts.total_batch}
    installed = installed_versions(RUN_PACKAGES)
    run_packages = installed  # what the checkpoint records: the versions the run started with
    step = 0
    if config.resume:
        step, run_packages = resume_run(config, parts, config_record, installed, processes)
    ddp_model = (
        DistributedDataParallel(
            parts.model, device_ids=[processes.local_rank] if device.type == "cuda" else None
        )
        if processes.distributed
        else parts.model
    )

    if is_main:
        print(
            f"training {config.arch} on {len(dataset)} images of {dataset.num_classes} identities, "
            f"{processes.world_size} process(es) x batch {config.batch_size}, {total_steps} steps "
            f"({steps_per_epoch} per epoch), starting at step {step}, on {device}",
            file=sys.stderr,
        )
    if validation:
        print(
            f"verification on {len(validation.same)} pairs of {config.val_pairs} "
            f"({validation.skipped} skipped: an image without a face)",
            file=sys.stderr,
        )

    # -- loop: each epoch's order comes from (seed, epoch), so a resumed run skips exactly the
    # batches it already trained on
    sums = torch.zeros(4, device=device)  # total, ce, quality, mean CR since the last log
    interval_start, interval_steps = time.perf_counter(), 0
    while step < stop_step:
        epoch, done_in_epoch = divmod(step, steps_per_epoch)
        sampler.set_epoch(epoch)
        order = list(sampler)
        batches = [
            order[start : start + config.batch_size]
            for start in range(
                done_in_epoch * config.batch_size,
                steps_per_epoch * config.batch_size,
                config.batch_size,
            )
        ]
        loader = DataLoader(
            dataset,
            batch_sampler=batches,
            num_workers=config.num_workers,
            pin_memory=device.type == "cuda",
            # Augmentation draws differ between epochs and ranks but repeat between runs.
            generator=torch.Generator().manual_seed(config.seed + 1000 * epoch + processes.rank),
        )
        for (images, degraded, *teacher_target), labels in loader:
            images = images.to(device, non_blocking=True)
            labels = labels.to(device, non_blocking=True)
            classified = None if config.classify_degraded else ~degraded.to(device)
            cr_target = teacher_target[0].to(device) if teacher_target else None
            with torch.autocast(device.type, dtype=parts.amp_dtype, enabled=parts.use_amp):
                loss_parts = ddp_model(images, labels, classified, cr_target)
            parts.optimizer.zero_grad(set_to_none=True)
            parts.scaler.scale(loss_parts.total).backward()
            parts.scaler.unscale_(parts.optimizer)
            nn.utils.clip_grad_norm_(backbone.parameters(), config.clip_grad_norm)
            parts.scaler.step(parts.optimizer)
            parts.scaler.update()
            step_lr = parts.scheduler.get_last_lr()[0]  # the lr this step used
            parts.scheduler.step()
            step += 1
            sums += torch.stack([part.detach().float() for part in loss_parts])
            interval_steps += 1

            # -- logging, evaluation and checkpoints
            if is_main and (step % config.log_every == 0 or step == stop_step):
                elapsed = time.perf_counter() - interval_start
                total, ce, quality, mean_cr = (sums / interval_steps).tolist()
                record = {
                    "step": step,
                    "epoch": epoch,
                    "loss": total,
                    "ce": ce,
                    "quality_loss": quality,
                    "mean_cr": mean_cr,
                    "lr": step_lr,
                    "images_per_s": interval_steps * parts.total_batch / elapsed,
                }
                append_log(config.out, record)
                print(
                    f"step {step}/{total_steps} epoch {epoch} loss {total:.3f} ce {ce:.3f} "
                    f"quality {quality:.4f} cr {mean_cr:.3f} lr {record['lr']:.2e} "
                    f"{record['images_per_s']:.1f} img/s",
                    file=sys.stderr,
                )
                sums.zero_()
                interval_start, interval_steps = time.perf_counter(), 0
            if validation and (step % config.eval_every == 0 or step == stop_step):
                accuracy = validation.accuracy(backbone, device)
                append_log(
                    config.out,
                    {"step": step, "val_accuracy": accuracy, "val_pairs": len(validation.same)},
                )
                print(f"step {step}: verification accuracy {accuracy:.4f}", file=sys.stderr)
            if is_main and (step % config.save_every == 0 or step == stop_step):
                save_checkpoint(
                    config.out / CHECKPOINT_NAME,
                    checkpoint_of(parts, step, data, config_record, run_packages, device),
                )
            if step == stop_step:
                break

    if processes.distributed:
        dist.destroy_process_group()
    return backbone


if __name__ == "__main__":
    from fiqa_cli.export.train_cli import train_command

    train_command(prog_name="python -m fiqa_cli.export.train")
