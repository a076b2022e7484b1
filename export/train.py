"""Train a CR-FIQA model. One file, read top to bottom: config, data, model, loss, optimiser,
schedule, resume, loop (with logging, evaluation and checkpoints).

One process (CPU or one GPU):  fiqa train --data DATA --arch mobilefacenet --out runs/mfn
Data parallel, N processes:    torchrun --nproc_per_node N -m fiqa_cli.export.train --data ...
Both take the options of fiqa_cli.export.train_cli. Under torchrun every process trains on its
own shard of each epoch and DDP averages the gradients; rank 0 alone logs and writes checkpoints.

DATA is either an insightface RecordIO pack (a folder with train.rec and train.idx) or an image
folder ROOT/IDENTITY/*.jpg (see image_folder.py).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler

from fiqa_cli import model_contract
from fiqa_cli.choices import LARGEST_FACE
from fiqa_cli.evaluation.lfw_pairs import read_lfw_pairs
from fiqa_cli.export.backbones import create_backbone
from fiqa_cli.export.image_folder import (
    AlignedCropCache,
    FaceImageFolder,
    aligned_crops,
    read_crop_rgb,
)
from fiqa_cli.export.loss import CRFIQALoss, LossParts
from fiqa_cli.export.recordio import RecordIODataset
from fiqa_cli.runtime import degrade

CHECKPOINT_NAME = "checkpoint.pt"
LOG_NAME = "log.jsonl"
# The released recipe: lr 0.1 for 4 GPUs x 128 images, scaled linearly with the total batch.
REFERENCE_BATCH = 512
# The released CASIA-WebFace schedule divides the lr by 10 at epochs 20, 28 and 32 of 34.
RELEASED_MILESTONES = (20 / 34, 28 / 34, 32 / 34)


@dataclasses.dataclass
class TrainConfig:
    data: Path
    out: Path
    arch: str = "iresnet50"
    embedding_size: int = 512
    epochs: int = 34
    batch_size: int = 128  # per process
    lr: float = 0.1  # at REFERENCE_BATCH images per step in total
    lr_milestones: tuple[float, ...] = RELEASED_MILESTONES  # fractions of all training steps
    warmup_epochs: float = 0.0
    momentum: float = 0.9
    weight_decay: float = 5e-4
    clip_grad_norm: float = 5.0  # on the backbone, as released
    dropout: float = 0.4
    margin: float = 0.5
    scale: float = 64.0
    quality_weight: float = 10.0
    cr_formula: str = model_contract.CR_FORMULA_PAPER
    augment_degradations: float = 0.0  # fraction of samples given one random degradation
    classify_degraded: bool = True  # False: degraded samples train the quality head only
    min_images_per_id: int = 1
    detector: str = "auto"
    detector_model: Path | None = None
    faces: str = LARGEST_FACE  # which face of a raw photo is the labelled one
    num_workers: int = 4
    seed: int = 0
    max_steps: int | None = None  # stop early; the schedule still spans all epochs
    resume: bool = False
    val_pairs: Path | None = None
    val_root: Path | None = None
    eval_every: int = 1000
    log_every: int = 50
    save_every: int = 1000


# ----------------------------------------------------------------------------------------------
# Input pipeline: uint8 RGB 112x112 crops -> normalised float tensors, with augmentation


def to_input_tensor(rgb: np.ndarray) -> torch.Tensor:
    """HxWx3 uint8 RGB -> 3xHxW float32 normalised as the model contract says ([-1, 1])."""
    pixels = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float() / 255.0
    mean = torch.tensor(model_contract.MEAN).view(3, 1, 1)
    std = torch.tensor(model_contract.STD).view(3, 1, 1)
    return (pixels - mean) / std


@dataclasses.dataclass(frozen=True)
class TrainingDegradation:
    """One kind of fiqa_cli.runtime.degrade degradation, at a strength drawn between the one where
    its physical parameter is `weakest` (a visible degradation) and the strongest."""

    kind: str
    weakest: float

    def __call__(self, rgb: np.ndarray, draw: float) -> np.ndarray:
        """Degrade at the strength that `draw`, uniform in [0, 1], picks from the range."""
        lowest = degrade.degradation_strength(self.kind, self.weakest)
        strength = lowest + (1.0 - lowest) * draw
        # Noise comes from torch's generator too, which DataLoader seeds per worker.
        rng = np.random.default_rng(int(torch.randint(2**31, ())))
        return degrade.degrade(
            rgb, self.kind, strength, color_order=model_contract.COLOR_ORDER, rng=rng
        )


DEGRADATIONS = (
    TrainingDegradation("blur", weakest=0.5),  # Gaussian sigma, pixels
    TrainingDegradation("downscale", weakest=1.5),  # shrink factor
    TrainingDegradation("jpeg", weakest=90),  # JPEG quality
    TrainingDegradation("noise", weakest=4.0),  # noise std, grey levels
    TrainingDegradation("underexposure", weakest=0.75),  # exposure factor
    TrainingDegradation("occlusion", weakest=0.1),  # covered fraction of the height, from the chin
)


class TrainTransform:
    """Random horizontal flip; for a fraction of samples, one degradation of random strength.
    Returns the input tensor and whether the sample was degraded.

    Degraded samples show the quality head what poor captures look like: their lower certainty
    ratio becomes its target. Randomness comes from torch, which DataLoader seeds per worker.
    """

    def __init__(self, degradation_fraction: float = 0.0) -> None:
        self.degradation_fraction = degradation_fraction

    def __call__(self, rgb: np.ndarray) -> tuple[torch.Tensor, bool]:
        if torch.rand(()) < 0.5:
            rgb = rgb[:, ::-1]
        degraded = bool(torch.rand(()) < self.degradation_fraction)
        if degraded:
            degradation = DEGRADATIONS[int(torch.randint(len(DEGRADATIONS), ()))]
            rgb = degradation(np.ascontiguousarray(rgb), float(torch.rand(())))
        return to_input_tensor(rgb), degraded


def load_dataset(
    config: TrainConfig, crop_cache: AlignedCropCache
) -> RecordIODataset | FaceImageFolder:
    transform = TrainTransform(config.augment_degradations)
    if (config.data / "train.rec").is_file() and (config.data / "train.idx").is_file():
        return RecordIODataset(config.data, transform)
    return FaceImageFolder(
        config.data, crop_cache, min_images_per_id=config.min_images_per_id, transform=transform
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
        self, images: torch.Tensor, labels: torch.Tensor, classified: torch.Tensor | None = None
    ) -> LossParts:
        embeddings, quality = self.backbone(images)
        return self.loss(embeddings, quality, labels, classified)


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
            raise ValueError(f"no pair of {pairs_path} has faces in both images")
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


def checkpoint_config(config: TrainConfig, dataset) -> dict:
    plain = {
        key: str(value)
        if isinstance(value, Path)
        else list(value)
        if isinstance(value, tuple)
        else value
        for key, value in dataclasses.asdict(config).items()
    }
    return plain | {
        "input_size": model_contract.INPUT_SIZE,
        "color_order": model_contract.COLOR_ORDER,
        "mean": list(model_contract.MEAN),
        "std": list(model_contract.STD),
        "alignment": model_contract.ALIGNMENT_TEMPLATE,
        "dataset_fingerprint": dataset.fingerprint,
        "num_classes": dataset.num_classes,
    }


# A resumed run must see the same model, data and total batch, or its schedule means nothing.
RESUME_MUST_MATCH = (
    "arch",
    "embedding_size",
    "num_classes",
    "dataset_fingerprint",
    "cr_formula",
    "total_batch",
)


def save_checkpoint(path: Path, checkpoint: dict) -> None:
    partial = path.with_suffix(".partial")
    torch.save(checkpoint, partial)
    partial.replace(path)  # atomic: a crash mid-save leaves the previous checkpoint intact


def append_log(run_dir: Path, record: dict) -> None:
    with open(run_dir / LOG_NAME, "a") as log:
        log.write(json.dumps(record) + "\n")


# ----------------------------------------------------------------------------------------------


def train(config: TrainConfig) -> nn.Module:
    """Train as `config` says; returns the trained backbone (this process's replica)."""
    # -- processes: torchrun sets RANK/LOCAL_RANK/WORLD_SIZE; without them, a single process
    distributed = "RANK" in os.environ
    if distributed:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        # Rank 0 may spend long aligning a raw-photo folder while the others wait.
        dist.init_process_group(backend, timeout=timedelta(hours=4))
    rank = dist.get_rank() if distributed else 0
    world_size = dist.get_world_size() if distributed else 1
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if torch.cuda.is_available():
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    is_main = rank == 0
    config.out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)  # same initial weights on every rank

    # -- data: rank 0 aligns raw photos first, the other ranks then read its cache
    crop_cache = AlignedCropCache(
        config.out / "aligned-crops", config.detector, config.detector_model, config.faces
    )
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
    sampler = DistributedSampler(dataset, world_size, rank, shuffle=True, seed=config.seed)
    steps_per_epoch = len(sampler) // config.batch_size
    if steps_per_epoch == 0:
        raise ValueError(
            f"{len(dataset)} images are fewer than one batch of {config.batch_size} per process"
        )
    total_steps = steps_per_epoch * config.epochs
    stop_step = min(total_steps, config.max_steps or total_steps)

    # -- model and loss
    backbone = create_backbone(
        config.arch, dropout=config.dropout, embedding_size=config.embedding_size
    )
    loss = CRFIQALoss(
        config.embedding_size,
        dataset.num_classes,
        scale=config.scale,
        margin=config.margin,
        quality_weight=config.quality_weight,
        cr_formula=config.cr_formula,
    )
    model = BackboneWithLoss(backbone, loss).to(device).train()

    # -- optimiser and schedule (stepped once per optimiser step)
    total_batch = config.batch_size * world_size
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=config.lr * total_batch / REFERENCE_BATCH,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
    )
    warmup_steps = round(config.warmup_epochs * steps_per_epoch)
    milestone_steps = [round(fraction * total_steps) for fraction in config.lr_milestones]
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: lr_factor(step, warmup_steps=warmup_steps, milestone_steps=milestone_steps),
    )
    # Mixed precision on GPUs: bfloat16 where supported; float16 needs loss scaling.
    use_amp = device.type == "cuda"
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler(device.type, enabled=use_amp and amp_dtype == torch.float16)

    # -- resume: weights, optimiser momentum, schedule position and step counter
    config_record = checkpoint_config(config, dataset) | {"total_batch": total_batch}
    checkpoint_path = config.out / CHECKPOINT_NAME
    step = 0
    if config.resume:
        if not checkpoint_path.is_file():
            raise FileNotFoundError(f"cannot resume: no checkpoint at {checkpoint_path}")
        checkpoint = torch.load(checkpoint_path, map_location=device, weights_only=True)
        saved = checkpoint["config"]
        for key in RESUME_MUST_MATCH:
            if saved[key] != config_record[key]:
                raise ValueError(
                    f"cannot resume {checkpoint_path}: {key} was {saved[key]!r}, "
                    f"now {config_record[key]!r}"
                )
        backbone.load_state_dict(checkpoint["backbone"])
        loss.head.load_state_dict(checkpoint["head"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        scaler.load_state_dict(checkpoint["grad_scaler"])
        step = checkpoint["step"]
        # Dropout and, in the main process, augmentation draw from these generators: restored,
        # the resumed steps draw what an uninterrupted run would have drawn.
        if "rng_state" in checkpoint:  # checkpoints written before it was saved lack it
            torch.set_rng_state(checkpoint["rng_state"].cpu())
            if device.type == "cuda":
                torch.cuda.set_rng_state(checkpoint["cuda_rng_state"].cpu(), device)
    ddp_model = (
        DistributedDataParallel(model, device_ids=[local_rank] if device.type == "cuda" else None)
        if distributed
        else model
    )

    def write_checkpoint() -> None:
        save_checkpoint(
            checkpoint_path,
            {
                "format": "fiqa-checkpoint",
                "format_version": 1,
                "backbone": backbone.state_dict(),
                "head": loss.head.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "grad_scaler": scaler.state_dict(),
                "step": step,
                "epoch": step // steps_per_epoch,  # completed epochs
                "rng_state": torch.get_rng_state(),
                "cuda_rng_state": torch.cuda.get_rng_state(device)
                if device.type == "cuda"
                else torch.empty(0, dtype=torch.uint8),
                "config": config_record,
            },
        )

    if is_main:
        print(
            f"training {config.arch} on {len(dataset)} images of {dataset.num_classes} identities, "
            f"{world_size} process(es) x batch {config.batch_size}, {total_steps} steps "
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
            generator=torch.Generator().manual_seed(config.seed + 1000 * epoch + rank),
        )
        for (images, degraded), labels in loader:
            images = images.to(device, non_blocking=True)
            labels = labels.to(device, non_blocking=True)
            classified = None if config.classify_degraded else ~degraded.to(device)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
                parts = ddp_model(images, labels, classified)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(parts.total).backward()
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(backbone.parameters(), config.clip_grad_norm)
            scaler.step(optimizer)
            scaler.update()
            step_lr = scheduler.get_last_lr()[0]  # the lr this step used
            scheduler.step()
            step += 1
            sums += torch.stack([part.detach().float() for part in parts])
            interval_steps += 1

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
                    "images_per_s": interval_steps * total_batch / elapsed,
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
                write_checkpoint()
            if step == stop_step:
                break

    if distributed:
        dist.destroy_process_group()
    return backbone


if __name__ == "__main__":
    from fiqa_cli.export.train_cli import train_command

    train_command(prog_name="python -m fiqa_cli.export.train")
