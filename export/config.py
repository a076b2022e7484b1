"""A training run's settings and their defaults, in one place: `fiqa train`'s options take
their defaults from here, and checkpoints record them. No torch: `fiqa train --help` reads it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from fiqa_cli import model_contract
from fiqa_cli.choices import AUTO_DETECTOR, LARGEST_FACE

# The released recipe: lr 0.1 for 4 GPUs x 128 images, scaled linearly with the total batch.
REFERENCE_BATCH = 512
# The released CASIA-WebFace schedule divides the lr by 10 at epochs 20, 28 and 32 of 34.
RELEASED_MILESTONES = (20 / 34, 28 / 34, 32 / 34)


@dataclass
class TrainConfig:
    data: Path | tuple[Path, ...]  # one root, or several whose identities stay apart
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
    # The quality head's lr as a fraction of the rest's: its one linear layer over a 512-d
    # embedding takes a far larger step than the backbone's layers for the same lr.
    quality_head_lr: float = 1.0
    cr_formula: str = model_contract.CR_FORMULA_PAPER
    augment_degradations: float = 0.0  # fraction of samples given one random degradation
    classify_degraded: bool = True  # False: degraded samples train the quality head only
    cr_teacher: str | None = None  # a teacher_targets.TEACHERS name: CR targets from it
    teacher_variants: int = 2  # degraded variants per photo that the teacher embeds
    min_images_per_id: int = 1
    detector: str = AUTO_DETECTOR
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

    def __post_init__(self) -> None:
        self.data = (self.data,) if isinstance(self.data, (str, Path)) else tuple(self.data)
        self.data = tuple(Path(root) for root in self.data)


def default(field: str) -> object:
    """The default of one TrainConfig field (for the command line's option defaults)."""
    return {f.name: f.default for f in dataclasses.fields(TrainConfig)}[field]
