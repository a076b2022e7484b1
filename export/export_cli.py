"""`fiqa export`: turn a training or official CR-FIQA checkpoint into an ONNX quality model."""

from __future__ import annotations

from pathlib import Path

import click

from fiqa_cli.commands.options import FiqaCommand
from fiqa_cli.export import ARCHITECTURES, DEFAULT_OPSET

# The TorchScript exporter's range; below 13 some operators export with deprecated forms.
MIN_OPSET = 13
MAX_OPSET = 20


@click.command("export", cls=FiqaCommand)
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the model. [default: CHECKPOINT with the suffix .onnx]",
)
@click.option(
    "--arch",
    type=click.Choice(sorted(ARCHITECTURES)),
    help="Architecture to load the weights into. [default: recorded in or inferred from "
    "the checkpoint]",
)
@click.option(
    "--trust-checkpoint",
    is_flag=True,
    help="Unpickle arbitrary Python objects in the checkpoint. This can run code from the "
    "file: use it only for files from a source you trust.",
)
@click.option(
    "--fp16",
    is_flag=True,
    help="Store weights and compute in half precision (inputs and outputs stay float32). "
    "Meant for GPUs; on CPUs it is usually slower.",
)
@click.option(
    "--int8",
    "int8_crops",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    metavar="CROPS",
    help="Quantise to int8 (static: weights per channel, activation ranges calibrated on the "
    "aligned 112x112 crops in CROPS, 50 to 500 of them). Needs --parity-images (other "
    "held-out crops): the int8 model must order them as the float32 model does (Spearman "
    "0.99 or more).",
)
@click.option(
    "--no-parity", is_flag=True, help="Skip comparing the ONNX model with the torch model."
)
@click.option(
    "--parity-images",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Folder of aligned 112x112 face crops to check parity on. [default: seeded random inputs]",
)
@click.option(
    "--data-terms",
    default="",
    metavar="TEXT",
    help="The terms of the data the model was trained on (it inherits them), kept in its "
    "metadata for `fiqa doctor` to show.",
)
@click.option(
    "--opset",
    type=click.IntRange(MIN_OPSET, MAX_OPSET),
    default=DEFAULT_OPSET,
    show_default=True,
    help="ONNX opset version.",
)
def export_command(
    checkpoint: Path,
    out_path: Path | None,
    arch: str | None,
    trust_checkpoint: bool,
    fp16: bool,
    int8_crops: Path | None,
    no_parity: bool,
    parity_images: Path | None,
    opset: int,
    data_terms: str,
) -> None:
    """Export CHECKPOINT (a `fiqa train` checkpoint or a bare CR-FIQA state_dict) to ONNX.

    The model is checked against the checkpoint's torch model before it is written; the
    figures go to stderr and the model's path to stdout.
    """
    # Imported here: torch loads only when an export really runs, not for `fiqa --help`.
    from fiqa_cli.export.onnx_export import export_checkpoint

    result = export_checkpoint(
        checkpoint,
        out_path,
        arch=arch,
        trust=trust_checkpoint,
        fp16=fp16,
        int8_crops=int8_crops,
        parity=not no_parity,
        parity_images=parity_images,
        opset=opset,
        data_terms=data_terms,
    )
    click.echo(f"exported {result.architecture} ({result.precision})", err=True)
    if result.parity is not None:
        click.echo(result.parity.summary(), err=True)
    click.echo(str(result.out_path))
