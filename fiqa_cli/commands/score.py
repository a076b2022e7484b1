"""`fiqa score`: quality scores for face photos, one row per input (or per face).

Exit codes: 0 the run completed (per-input failures are rows), 1 fatal (model, detector,
device or output unusable, the output full or locked), 2 usage, 3 `--fail-under` not met by
some input or some input failing `--profile`/`--require`, 130 interrupted (SIGINT), 141 the
output pipe closed (SIGPIPE).
"""

from __future__ import annotations

import io
import math
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import click

from fiqa_cli.choices import DEFAULT_MAX_PIXELS, TENSORRT_DEVICE
from fiqa_cli.commands.options import (
    FiqaCommand,
    batch_size_option,
    cuda_option,
    detector_model_option,
    detector_option,
    device_option,
    faces_option,
    model_option,
    profile_from_options,
    profile_options,
    provider_options_option,
)
from fiqa_cli.commands.progress import RunProgress
from fiqa_cli.runtime.inputs import (
    STDIN,
    InputItem,
    expand_inputs,
    in_shard,
    parse_shard,
    stdin_bytes,
)
from fiqa_cli.runtime.quiet import keep_libraries_quiet
from fiqa_cli.runtime.rows import (
    FAIL,
    FORMATS,
    OK,
    OutputFormatError,
    RecordSink,
    Row,
    ScoreFileError,
    open_rows,
    output_format,
    prepare_resume,
    row_columns,
)

if TYPE_CHECKING:
    from fiqa_cli.runtime.pipeline import Scorer
    from fiqa_cli.runtime.profiles import Profile
    from fiqa_cli.runtime.quality_model import QualityModel

EXIT_FAIL_UNDER = 3


@click.command(cls=FiqaCommand)
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "--out",
    default="-",
    show_default=True,
    help="Output file; '-' is stdout. Its suffix chooses the format: .csv, .jsonl/.ndjson, "
    ".parquet (with the parquet extra; written whole at the end); any other is CSV.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    help="Default: from --out's suffix, else csv; must not contradict that suffix.",
)
@model_option("ONNX quality model written by `fiqa export` (default: the embedded model).")
@detector_option(from_env=True)
@detector_model_option()
@faces_option()
@batch_size_option("Face crops per inference batch, gathered across inputs.")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    envvar="FIQA_WORKERS",
    help="Threads that decode, detect and align ahead of inference [default: one per CPU; "
    "with '-' inputs are scored one at a time].",
)
@click.option(
    "--inference-sessions",
    type=click.IntRange(min=1),
    envvar="FIQA_INFERENCE_SESSIONS",
    help="Sessions of the quality model scoring batches side by side, each on an equal share "
    "of the CPUs [default: 2 on a CPU of two or more cores with two or more --workers, else 1] "
    "(benchmarks/gpu_throughput.py measures more on many cores).",
)
@device_option(
    "auto: CUDA when usable, else CPU (said once on stderr). tensorrt: the quality model on "
    "TensorRT, engines cached under ~/.cache/fiqa/tensorrt; detection on CUDA.",
    from_env=True,
    tensorrt=True,
)
@cuda_option()
@provider_options_option(
    "tensorrt",
    "onnxruntime TensorRT provider option for --device tensorrt, repeatable (e.g. "
    "trt_fp16_enable=True, trt_engine_cache_path=DIR); overrides fiqa's shape profile and cache.",
)
@click.option(
    "--save-crops",
    type=click.Path(path_type=Path, file_okay=False),
    help="Write the aligned crops the model saw to this folder.",
)
@click.option(
    "--max-pixels",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_PIXELS,
    show_default=True,
    help="Pixel budget per image, checked on its header before decoding: a larger image "
    "gets an `unreadable` row.",
)
@click.option(
    "--resume",
    is_flag=True,
    help="With --out FILE: skip inputs already in it, append. Refused when another model or "
    "calibration wrote its rows (recorded in FILE.fiqa-model.json).",
)
@click.option(
    "--fail-under",
    type=float,
    callback=lambda ctx, param, value: _finite(value),
    help="Exit 3 when any input has no scored face with quality at or above this value.",
)
@click.option(
    "--shard",
    metavar="K/N",
    callback=lambda ctx, param, value: _shard(value),
    help="Score only shard K of N (1-based), chosen by a hash of each path: N jobs with the "
    "same inputs cover every input exactly once, whatever their order.",
)
@click.option(
    "--measures",
    "with_measures",
    is_flag=True,
    help="Add each face's component measures (inter-eye distance, pose, exposure, ...): a "
    "native value and a 0-100 score each, -1 where not assessable; after the other columns.",
)
@click.option(
    "--landmarks",
    is_flag=True,
    help="Add the detector's five landmarks (eyes, nose tip, mouth corners) as x, y columns in "
    "the frame of the box columns; empty with --detector none.",
)
@profile_options
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or notices on stderr.")
def score(
    inputs: tuple[str, ...],
    out: str,
    fmt: str | None,
    model: Path | None,
    detector: str,
    detector_model: Path | None,
    faces: str,
    batch_size: int | None,
    workers: int | None,
    inference_sessions: int | None,
    device: str,
    cuda_options: dict[str, str],
    tensorrt_options: dict[str, str],
    save_crops: Path | None,
    max_pixels: int,
    resume: bool,
    fail_under: float | None,
    shard: tuple[int, int] | None,
    with_measures: bool,
    landmarks: bool,
    profile: str | None,
    requirements: tuple[str, ...],
    quiet: bool,
) -> None:
    """Score face photos: INPUT is an image, a folder (searched recursively) or '-' for
    newline-separated paths on stdin, each answered as it arrives."""
    # -- usage: refused before anything heavy loads
    fmt = _checked_usage(inputs, out, fmt, resume, device, tensorrt_options)
    stdin = stdin_bytes(inputs)
    judge = profile_from_options(profile, requirements)
    if quiet:
        keep_libraries_quiet()

    def notice(message: str) -> None:
        if not quiet:
            click.echo(f"fiqa: {message}", err=True)

    # -- model, detector and the scorer that runs them
    # Imported here so that `fiqa score --help` and usage errors do not load onnxruntime.
    from fiqa_cli.runtime.build import build_scoring
    from fiqa_cli.runtime.pipeline import Scorer
    from fiqa_cli.runtime.profiles import check_calibration
    from fiqa_cli.runtime.providers import usable_cpus

    workers = workers or usable_cpus()
    scoring = build_scoring(
        model=model,
        detector=detector,
        detector_model=detector_model,
        device=device,
        batch_size=batch_size,
        workers=workers,
        cuda_options=cuda_options,
        tensorrt_options=tensorrt_options,
        notice=notice,
        inference_sessions=inference_sessions,
        measures=with_measures or judge is not None,
    )
    if judge is not None:
        check_calibration(judge, scoring.model.calibration, scoring.model.path)
    if with_measures and scoring.model.calibration is None:
        notice(
            f"warning: {scoring.model.path} carries no calibration: quality_100 is -1 "
            "(`fiqa calibrate` adds one)"
        )
    if save_crops is not None:
        try:
            save_crops.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise click.ClickException(f"cannot create {save_crops}: {error.strerror}") from None
    scorer = Scorer(
        scoring.sessions,
        scoring.detector,
        faces=faces,
        batch_size=scoring.batch_size,
        workers=workers,
        crops_dir=save_crops,
        max_pixels=max_pixels,
        measures=with_measures or judge is not None,
        face_mesh=scoring.face_mesh,
        warn=lambda message: notice(f"warning: {message}"),
    )

    # -- rows, one input at a time, after those a resumed file holds
    columns = row_columns(measures=with_measures, landmarks=landmarks, judged=judge is not None)
    answered: dict[str, float | None] = {}

    def before_rows() -> None:  # with a text --out locked, before its header
        answered.update(_answered_before(Path(out), fmt, columns) if resume else {})
        warning = _record_model(out, scoring.model, resume, has_rows=bool(answered))
        if warning:
            notice(f"warning: {warning}")

    with open_rows(out, fmt, columns, append=resume, before_rows=before_rows) as writer:

        def pending(stdin: BinaryIO) -> Iterator[InputItem]:
            return (
                item
                for item in expand_inputs(inputs, stdin)
                if item.path not in answered and (shard is None or in_shard(item.path, *shard))
            )

        # Counts, not a table of every input: memory must not grow with the number of inputs.
        gate = _FailUnderCount(fail_under, answered.values())
        answer_each = STDIN in inputs
        progress = RunProgress(
            live=not (quiet or answer_each) and sys.stderr.isatty(),
            # The total: the same inputs listed again (never stdin's, which are read once).
            count_inputs=None if answer_each else lambda: pending(io.BytesIO()),
        )
        failing_verdicts = _write_rows(
            scorer, pending(stdin), writer, gate, judge, answer_each, progress
        )

    # -- exit status
    notice(progress.summary())
    if gate.failing:
        notice(f"{gate.failing} of {gate.inputs} inputs have no face scored >= {fail_under}")
    if failing_verdicts:
        notice(f"{failing_verdicts} inputs fail profile {judge.name}")
    if gate.failing or failing_verdicts:
        sys.exit(EXIT_FAIL_UNDER)


def _checked_usage(
    inputs: tuple[str, ...],
    out: str,
    fmt: str | None,
    resume: bool,
    device: str,
    tensorrt_options: dict[str, str],
) -> str:
    """The output format, once the options that cannot go together are refused."""
    if resume and out == "-":
        raise click.UsageError("--resume needs --out FILE")
    if tensorrt_options and device != TENSORRT_DEVICE:
        raise click.UsageError("--tensorrt-option needs --device tensorrt")
    if inputs.count(STDIN) > 1:
        raise click.UsageError("'-' (stdin) may be given only once")
    try:
        return output_format(out, fmt, resume=resume)
    except OutputFormatError as error:
        raise click.UsageError(str(error)) from None


def _write_rows(
    scorer: Scorer,
    items: Iterable[InputItem],
    writer: RecordSink,
    gate: _FailUnderCount,
    judge: Profile | None,
    answer_each: bool,
    progress: RunProgress,
) -> int:
    """Score `items` and write each input's rows as they come, judged against `judge`,
    counting them in `gate`; the number of inputs with a failing verdict."""
    from fiqa_cli.runtime.profiles import judged

    failing_verdicts = 0
    try:
        for rows in scorer.score(items, answer_each=answer_each):
            if judge is not None:
                rows = [judged(row, judge) for row in rows]
                failing_verdicts += any(row.verdict == FAIL for row in rows)
            writer.write_input(rows)
            gate.add(_best_quality(rows))
            progress.add(rows)
    finally:
        progress.close()
    return failing_verdicts


class _FailUnderCount:
    """How many inputs have no face scored at or above `--fail-under` (none when unset),
    counting first the best qualities of inputs a resumed file answered already."""

    def __init__(self, threshold: float | None, answered: Iterable[float | None] = ()):
        self.threshold = threshold
        self.inputs = 0
        self.failing = 0
        for quality in answered:
            self.add(quality)

    def add(self, best_quality: float | None) -> None:
        self.inputs += 1
        if self.threshold is not None and (best_quality is None or best_quality < self.threshold):
            self.failing += 1


def _shard(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    try:
        return parse_shard(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


def _finite(value: float | None) -> float | None:
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"must be a finite number, not {value}")
    return value


def _answered_before(out: Path, fmt: str, columns: tuple[str, ...]) -> dict[str, float | None]:
    try:
        return prepare_resume(out, fmt, columns)
    except ScoreFileError as error:
        raise click.ClickException(f"cannot resume: {error}") from None
    except OSError as error:
        raise click.ClickException(f"cannot resume from {out}: {error.strerror}") from None


def _record_model(out: str, model: QualityModel, resume: bool, has_rows: bool) -> str | None:
    """Write the record of the model beside a file --out, or with --resume check that it
    wrote the rows there (`runtime.model_record`); a warning or None."""
    if out == "-" or not Path(out).is_file():
        return None
    from fiqa_cli.runtime.model_record import check_resume, model_record, write_record

    record = model_record(model)
    if resume:
        return check_resume(Path(out), record, has_rows)
    write_record(Path(out), record)
    return None


def _best_quality(rows: list[Row]) -> float | None:
    """The best quality as written (rounded), so that the gate agrees with the output."""
    qualities = [row.values()["quality"] for row in rows if row.status == OK]
    return max(qualities) if qualities else None
