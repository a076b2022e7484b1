"""`fiqa report`: a self-contained HTML page about score files (`fiqa_cli.evaluation.report`)."""

from __future__ import annotations

from pathlib import Path

import click

from fiqa_cli.commands.options import FiqaCommand


@click.command(cls=FiqaCommand)
@click.argument(
    "score_files",
    nargs=-1,
    required=True,
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="The HTML file to write.",
)
@click.option(
    "--threshold",
    type=float,
    help="Show what this threshold rejects, and the faces nearest it.",
)
@click.option(
    "--crops",
    "crops_dir",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="The --save-crops folder of the `fiqa score` run: thumbnails from its aligned crops.",
)
@click.option(
    "--edc",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="`fiqa evaluate` output to show: its --plot PNG, or its --out JSON (drawn again).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the face samples.")
def report(
    score_files: tuple[Path, ...],
    out: Path,
    threshold: float | None,
    crops_dir: Path | None,
    edc: Path | None,
    seed: int,
) -> None:
    """Write one HTML page about SCORE_FILES (written by `fiqa score` or `fiqa best`): counts
    per status, score histograms, the lowest- and highest-scoring faces, those nearest
    --threshold, and faces sampled across the score range, as embedded thumbnails. Images
    that cannot be read are listed. The page stays under 20 MB."""
    # Imported here so that `fiqa report --help` loads neither OpenCV nor numpy.
    from fiqa_cli.evaluation.report import build_report
    from fiqa_cli.runtime.safe_write import write_replacing

    page = build_report(score_files, threshold=threshold, crops_dir=crops_dir, edc=edc, seed=seed)
    try:  # names that were not UTF-8 go back as their bytes
        data = page.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate that no bytes decode to ("\ud800" in JSON)
        data = page.encode("utf-8", "backslashreplace")
    write_replacing(out, data)  # never through a link at --out, never blocking on a FIFO
    size = len(data)
    click.echo(f"fiqa report: wrote {out} ({size} bytes)", err=True)
