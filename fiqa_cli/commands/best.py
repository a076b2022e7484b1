"""`fiqa best`: the best shot of each burst (a folder of frames) or video.

Exit codes: 0 every group has a kept frame, 1 fatal (model, detector, device or output
unusable), 2 usage, 3 some group has no acceptable frame (its row says why), so that
`fiqa best burst/ --save out/ || retake` works in a shell loop.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from fiqa_cli.choices import ALL_FACES, GROUP_BY_VIDEO, GROUP_BYS
from fiqa_cli.commands.options import (
    FiqaCommand,
    batch_size_option,
    cuda_option,
    detector_model_option,
    detector_option,
    device_option,
    model_option,
    profile_from_options,
    profile_options,
)
from fiqa_cli.runtime.inputs import STDIN, stdin_bytes
from fiqa_cli.runtime.quiet import keep_libraries_quiet
from fiqa_cli.runtime.rows import FORMATS, OutputFormatError, open_rows, output_format

EXIT_NO_ACCEPTABLE_FRAME = 3
# Above any video's frame rate (high-speed cameras record up to about 1,000 frames a second);
# a larger --fps is a mistake, not a request.
MAX_FPS = 1000.0


@click.command(cls=FiqaCommand)
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "--group-by",
    type=click.Choice(GROUP_BYS),
    default=GROUP_BY_VIDEO,
    show_default=True,
    help="video: each video is a group, images by folder; folder: the images and videos of "
    "a folder together; none: all inputs one group.",
)
@click.option(
    "--top",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Frames kept per group, best first.",
)
@click.option(
    "--stride",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Score every N-th frame (of a video, or of a folder's images).",
)
@click.option(
    "--fps",
    type=click.FloatRange(min=0, min_open=True, max=MAX_FPS),
    help=(
        "Score about F frames per second of video (by timestamp); not with --stride. Above "
        f"the video's own frame rate every frame is scored; at most {MAX_FPS}."
    ),
)
@click.option(
    "--start",
    type=click.FloatRange(min=0),
    default=0.0,
    help="Video time (seconds) of the first frame scored.",
)
@click.option(
    "--end",
    type=click.FloatRange(min=0, min_open=True),
    help="Video time (seconds) at which scoring stops.",
)
@click.option(
    "--min-gap-ms",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="With --top: kept frames of one video at least this far apart.",
)
@click.option(
    "--min-quality",
    type=float,
    help="Frames scored below this are not acceptable.",
)
@profile_options
@click.option(
    "--save",
    type=click.Path(path_type=Path, file_okay=False),
    help="Write each kept frame and its aligned crop to this folder.",
)
@click.option(
    "--out",
    default="-",
    show_default=True,
    help="Output file; '-' is stdout. Its suffix chooses the format (as for `fiqa score`).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    help="Default: from --out's suffix, else csv; must not contradict that suffix.",
)
@model_option("ONNX quality model written by `fiqa export` (default: the embedded model).")
@detector_option(allow_none=False, from_env=True)
@detector_model_option()
@batch_size_option("Face crops per inference batch, gathered across a group's frames.")
@device_option("auto: CUDA when usable, else CPU.", from_env=True)
@cuda_option()
@click.option("--quiet", "-q", is_flag=True, help="No notices on stderr.")
def best(
    inputs: tuple[str, ...],
    group_by: str,
    top: int,
    stride: int,
    fps: float | None,
    start: float,
    end: float | None,
    min_gap_ms: float,
    min_quality: float | None,
    profile: str | None,
    requirements: tuple[str, ...],
    save: Path | None,
    out: str,
    fmt: str | None,
    model: Path | None,
    detector: str,
    detector_model: Path | None,
    batch_size: int | None,
    device: str,
    cuda_options: dict[str, str],
    quiet: bool,
) -> None:
    """Keep the best frame of each group: INPUT is a folder of frames (a burst), a video, an
    image, or '-' for one group per stdin line (each answered as it arrives).

    A frame is acceptable when exactly one face is detected and it is not cut off by the image
    border (and, with --min-quality, scored at least that, with --profile/--require meeting
    the profile); acceptable frames are ranked by
    quality. One row per kept frame; one row per group without an acceptable frame, with the
    reasons of its best rejected frame.
    """
    from fiqa_cli.runtime.best_shot import BEST_COLUMNS, best_of_group, face_gate, save_kept
    from fiqa_cli.runtime.build import build_scoring
    from fiqa_cli.runtime.frames import Sampling, groups_from_arguments, groups_from_lines
    from fiqa_cli.runtime.pipeline import Scorer
    from fiqa_cli.runtime.profiles import check_calibration

    if fps is not None and stride != 1:
        raise click.UsageError("--fps and --stride cannot be combined")
    if end is not None and end <= start:
        raise click.UsageError("--end must be after --start")
    if STDIN in inputs and len(inputs) > 1:
        raise click.UsageError("'-' (stdin) must be the only INPUT")
    try:
        fmt = output_format(out, fmt)
    except OutputFormatError as error:
        raise click.UsageError(str(error)) from None
    sampling = Sampling(stride=stride, fps=fps, start_s=start, end_s=end)
    judge = profile_from_options(profile, requirements)
    if quiet:
        keep_libraries_quiet()

    def notice(message: str) -> None:
        if not quiet:
            click.echo(f"fiqa best: {message}", err=True)

    scoring = build_scoring(
        model=model,
        detector=detector,
        detector_model=detector_model,
        device=device,
        batch_size=batch_size,
        cuda_options=cuda_options,
        notice=notice,
        inference_sessions=1,  # frames are scored by one session (Scorer below)
        measures=judge is not None,
    )
    if judge is not None:
        check_calibration(judge, scoring.model.calibration, scoring.model.path)
    scorer = Scorer(
        scoring.model,
        scoring.detector,
        faces=ALL_FACES,
        batch_size=scoring.batch_size,
        measures=judge is not None,
        face_mesh=scoring.face_mesh,
    )
    if save is not None:
        try:
            save.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise click.ClickException(f"cannot create {save}: {error.strerror}") from None
    groups = (
        groups_from_lines(stdin_bytes(inputs))
        if inputs == (STDIN,)
        else groups_from_arguments(inputs, group_by)
    )
    gate = face_gate(min_quality, judge)
    without_frame = 0
    with open_rows(out, fmt, BEST_COLUMNS) as writer:
        for group in groups:
            result = best_of_group(scorer, group, sampling, gate, top, min_gap_ms)
            if save is not None and result.kept:
                result, problems = save_kept(result, scorer, save)
                for problem in problems:  # an error the caller asked to avoid: said under -q too
                    click.echo(f"fiqa best: {group.name}: {problem}", err=True)
            writer.write_records(result.records())
            without_frame += not result.kept
    if without_frame:
        notice(f"{without_frame} group(s) have no acceptable frame")
        sys.exit(EXIT_NO_ACCEPTABLE_FRAME)
