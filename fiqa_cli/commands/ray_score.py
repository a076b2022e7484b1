"""`fiqa ray-score`: `fiqa score` spread over a Ray cluster (or all local cores), writing the
same rows as partitioned CSV or Parquet into a folder.

Ray is an optional extra: it is imported only when the command runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from fiqa_cli.commands.options import (
    FiqaCommand,
    batch_size_option,
    detector_model_option,
    detector_option,
    faces_option,
    model_option,
)
from fiqa_cli.runtime.inputs import expand_inputs, stdin_bytes
from fiqa_cli.runtime.quiet import keep_libraries_quiet
from fiqa_cli.runtime.rows import DEFAULT_FORMAT, RAY_FORMATS

if TYPE_CHECKING:
    from fiqa_cli.runtime.build import Scoring

RAY_EXTRA_HINT = "pip install 'fiqa[ray]'"


@click.command(cls=FiqaCommand)
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "--out",
    required=True,
    help="Output folder (new or empty), or a filesystem URI such as s3://bucket/prefix; "
    "on a cluster it must be reachable from every node.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(RAY_FORMATS),
    default=DEFAULT_FORMAT,
    show_default=True,
    help="One part file per block of rows.",
)
@click.option(
    "--address",
    help="Ray cluster to run on: auto (the one this node belongs to) or ray://HEAD:10001 "
    "[default: $RAY_ADDRESS, else a cluster started here with `ray start`, else a new "
    "local Ray instance].",
)
@click.option(
    "--actors",
    type=click.IntRange(min=1),
    help="Actors (one CPU and one model session each) [default: up to one per cluster CPU].",
)
@model_option("ONNX quality model written by `fiqa export` (default: the embedded model).")
@detector_option(from_env=True)
@detector_model_option()
@faces_option()
@batch_size_option("Inputs per Ray batch, and face crops per inference batch.")
@click.option(
    "--quiet",
    "-q",
    is_flag=True,
    help="Nothing on stderr but errors: no notices, no Ray log lines or progress bars.",
)
def ray_score(
    inputs: tuple[str, ...],
    out: str,
    fmt: str,
    address: str | None,
    actors: int | None,
    model: Path | None,
    detector: str,
    detector_model: Path | None,
    faces: str,
    batch_size: int | None,
    quiet: bool,
) -> None:
    """Score face photos on Ray: INPUT is an image, a folder (searched recursively) or '-'
    for newline-separated paths on stdin. Paths must name the same files on every node."""
    try:
        import ray

        from fiqa_cli.cluster import ray_scoring
    except ImportError as error:
        raise click.ClickException(
            f"fiqa ray-score needs Ray Data ({error}): {RAY_EXTRA_HINT}"
        ) from None

    _check_output_folder(out)
    notice = _notice
    if quiet:
        # Ray's processes inherit file descriptor 2 and write their log lines there.
        keep_libraries_quiet()
        ray.data.DataContext.get_current().enable_progress_bars = False
        # Ray's Python loggers (its data executor's plans and warnings) have handlers of their own.
        for name in ("ray", "ray.data"):
            logging.getLogger(name).setLevel(logging.ERROR)

        def notice(message: str) -> None:
            pass

    scoring = _checked_scoring(model, detector, detector_model, batch_size, notice)
    recipe = ray_scoring.scorer_recipe(
        scoring.model, scoring.detector, faces=faces, batch_size=scoring.batch_size
    )
    items = list(expand_inputs(inputs, stdin_bytes(inputs)))
    if not items:
        raise click.ClickException("no inputs to score")
    started_here = not ray.is_initialized()
    if started_here:
        try:
            # Actor output would otherwise be copied to this process's stdout.
            ray.init(
                address=address,
                log_to_driver=False,
                logging_level=logging.ERROR if quiet else logging.INFO,
            )
        except ConnectionError as error:
            raise click.ClickException(f"cannot reach the Ray cluster: {error}") from None
    try:
        notice(f"scoring {len(items)} inputs on Ray into {out}")
        ray_scoring.score_on_ray(items, recipe, out, fmt=fmt, actors=actors)
    finally:
        if started_here:
            ray.shutdown()


def _check_output_folder(out: str) -> None:
    """Ray adds its part files to whatever the folder holds: rows of an earlier run would mix in."""
    if "://" in out:
        return
    folder = Path(out)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise click.UsageError(f"--out {out} must be a new or empty folder")


def _checked_scoring(
    model: Path | None,
    detector: str,
    detector_model: Path | None,
    batch_size: int | None,
    notice: Callable[[str], None],
) -> Scoring:
    """Built here first so that a bad file fails at once with its reason, not in every actor,
    and `auto` is resolved once for all nodes (actors run on CPUs)."""
    from fiqa_cli.runtime.build import build_scoring

    return build_scoring(
        model=model,
        detector=detector,
        detector_model=detector_model,
        device="cpu",
        batch_size=batch_size,
        notice=notice,
        inference_sessions=1,  # the actors build their own
    )


def _notice(message: str) -> None:
    click.echo(f"fiqa: {message}", err=True)
