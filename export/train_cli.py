"""`fiqa train`, also run as `torchrun --nproc_per_node N -m fiqa_cli.export.train ...`.

Both entry points share this one click command. torch is imported only once the command runs,
so `fiqa train --help` stays fast.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import click

from fiqa_cli.commands.options import (
    FiqaCommand,
    detector_model_option,
    detector_option,
    faces_option,
)
from fiqa_cli.export import ARCHITECTURES, CR_TEACHERS
from fiqa_cli.export.config import RELEASED_MILESTONES, TrainConfig, default
from fiqa_cli.model_contract import CR_FORMULA_PAPER, CR_FORMULA_RELEASED


def _fractions(ctx: click.Context, param: click.Parameter, value: str | None):
    if value is None:
        return None
    try:
        fractions = tuple(float(Fraction(part.strip())) for part in value.split(","))
    except (ValueError, ZeroDivisionError):
        raise click.BadParameter(
            "expected comma-separated fractions, e.g. 0.6,0.8,0.95 or 20/34,28/34"
        ) from None
    if not all(0 < fraction <= 1 for fraction in fractions):
        raise click.BadParameter("milestones are fractions of all training steps, in (0, 1]")
    return fractions


existing_path = click.Path(exists=True, path_type=Path)


@click.command("train", cls=FiqaCommand)
@click.option(
    "--data",
    required=True,
    multiple=True,
    type=existing_path,
    help="RecordIO folder (train.rec, train.idx[, property]) or ROOT/IDENTITY/*.jpg. Repeat for "
    "several image folders: identities of different roots stay apart, even with the same name.",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path),
    help="Run folder: checkpoint.pt, log.jsonl, aligned-crops/.",
)
@click.option(
    "--arch", type=click.Choice(ARCHITECTURES), default=default("arch"), show_default=True
)
@click.option("--embedding-size", type=int, default=default("embedding_size"), show_default=True)
@click.option("--epochs", type=click.IntRange(1), default=default("epochs"), show_default=True)
@click.option(
    "--batch-size",
    type=click.IntRange(1),
    default=default("batch_size"),
    show_default=True,
    help="Per process.",
)
@click.option(
    "--lr",
    type=float,
    default=default("lr"),
    show_default=True,
    help="Learning rate for 512 images per step in total; scaled linearly with the "
    "total batch (batch size x processes), as in the released code.",
)
@click.option(
    "--lr-milestones",
    callback=_fractions,
    help="Divide the lr by 10 at these fractions of all steps "
    "[default: 20/34,28/34,32/34 as released].",
)
@click.option("--warmup-epochs", type=float, default=default("warmup_epochs"), show_default=True)
@click.option(
    "--cr-formula",
    type=click.Choice([CR_FORMULA_PAPER, CR_FORMULA_RELEASED]),
    default=default("cr_formula"),
    show_default=True,
    help="paper: CCS/(NNCCS+1+eps); released: CCS/(NNCCS+eps).",
)
@click.option(
    "--quality-weight",
    type=float,
    default=default("quality_weight"),
    show_default=True,
    help="Weight of the certainty-ratio regression loss.",
)
@click.option(
    "--quality-head-lr",
    type=click.FloatRange(0, 1, min_open=True),
    default=default("quality_head_lr"),
    show_default=True,
    help="The quality head's learning rate as a fraction of the backbone's (1: as released). "
    "Lower it when the quality loss climbs as the lr warms up.",
)
@click.option(
    "--augment-degradations",
    type=click.FloatRange(0, 1),
    default=default("augment_degradations"),
    show_default=True,
    help="Fraction of samples given a random blur/downscale/JPEG/noise/darkening/occlusion.",
)
@click.option(
    "--cr-teacher",
    type=click.Choice(CR_TEACHERS),
    help="Take each sample's certainty-ratio target from this recogniser (the `teacher` extra) "
    "instead of the backbone being trained; a departure from the paper, see README. The "
    "student keeps the ArcFace loss.",
)
@click.option(
    "--teacher-variants",
    type=click.IntRange(0),
    default=default("teacher_variants"),
    show_default=True,
    help="With --cr-teacher: degraded variants per photo that the teacher embeds (cached in "
    "OUT/teacher-embeddings/); --augment-degradations picks among them.",
)
@click.option(
    "--classify-degraded/--no-classify-degraded",
    default=default("classify_degraded"),
    show_default=True,
    help="Train the classifier on degraded samples too. With --no-classify-degraded they give "
    "the quality head targets only: the backbone does not learn to see through them, so their "
    "certainty ratio stays as low as a clean-trained model finds it.",
)
@click.option(
    "--min-images-per-id",
    type=click.IntRange(1),
    default=default("min_images_per_id"),
    show_default=True,
    help="Drop image-folder identities with fewer images that hold a face.",
)
@detector_option(
    "Face detector for raw photos in image folders (as in `fiqa score`).", allow_none=False
)
@detector_model_option(must_exist=True)
@faces_option(allow_all=False)
@click.option(
    "--num-workers", type=click.IntRange(0), default=default("num_workers"), show_default=True
)
@click.option("--seed", type=int, default=default("seed"), show_default=True)
@click.option(
    "--max-steps",
    type=click.IntRange(1),
    help="Stop after this many steps; the lr schedule still spans all epochs.",
)
@click.option("--resume", is_flag=True, help="Continue from OUT/checkpoint.pt.")
@click.option(
    "--val-pairs",
    type=existing_path,
    help="LFW-format pairs.txt: log verification accuracy while training.",
)
@click.option(
    "--val-root",
    type=existing_path,
    help="Image root of --val-pairs: ROOT/NAME/NAME_0001.jpg.",
)
@click.option(
    "--eval-every", type=click.IntRange(1), default=default("eval_every"), show_default=True
)
@click.option(
    "--log-every", type=click.IntRange(1), default=default("log_every"), show_default=True
)
@click.option(
    "--save-every", type=click.IntRange(1), default=default("save_every"), show_default=True
)
def train_command(lr_milestones: tuple[float, ...] | None, **options) -> None:
    """Train a CR-FIQA model (backbone + quality head) and write OUT/checkpoint.pt.

    Under `torchrun --nproc_per_node N -m fiqa_cli.export.train` the same options run data
    parallel on N processes (NCCL on GPUs, gloo on CPUs).
    """
    if (options["val_pairs"] is None) != (options["val_root"] is None):
        raise click.UsageError("--val-pairs and --val-root go together")
    if options["cr_teacher"]:
        from fiqa_cli.export.teacher import TeacherUnavailable, check_teacher_installed

        try:
            check_teacher_installed()
        except TeacherUnavailable as error:
            raise click.ClickException(str(error)) from None
    from fiqa_cli.export.train import train

    train(TrainConfig(lr_milestones=lr_milestones or RELEASED_MILESTONES, **options))
