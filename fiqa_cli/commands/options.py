"""Command-line options that several commands share, so that each means the same everywhere.

The accepted values live in `fiqa_cli.choices`. Only click is imported: `--help` must not load
onnxruntime or torch.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click

from fiqa_cli.choices import (
    ALL_FACES,
    CENTRAL_FACE,
    CPU_BATCH_SIZE,
    CUDA_BATCH_SIZE,
    DETECTOR_ENVVAR,
    DETECTORS,
    DEVICE_ENVVAR,
    DEVICES,
    FR_MEAN,
    FR_STD,
    LARGEST_FACE,
    MODEL_ENVVAR,
    NO_DETECTOR,
    TENSORRT_DEVICE,
)
from fiqa_cli.errors import FiqaError

# The shell's codes for a process ended by SIGINT and by SIGPIPE (128 + signal number).
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141


if TYPE_CHECKING:
    from fiqa_cli.runtime.profiles import Profile


class FiqaCommand(click.Command):
    """A command whose expected failures (`FiqaError`) end as one `Error: ...` line and exit
    1, in this one place, instead of a catch list in each command. Ctrl-C exits 130 and a
    closed output pipe (`fiqa score ... | head`) 141, as the signals themselves would."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except FiqaError as error:
            raise click.ClickException(str(error)) from None
        except KeyboardInterrupt:
            click.echo("fiqa: interrupted", err=True)
            raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
        except BrokenPipeError:
            from fiqa_cli.runtime.output_file import discard_stdout

            discard_stdout()
            raise click.exceptions.Exit(EXIT_BROKEN_PIPE) from None


_DETECTOR_HELP = (
    "auto: SCRFD if a local model exists, else yunet; yunet: YuNet's boxes with MTCNN's "
    "landmarks, several times faster"
)
_NO_DETECTOR_HELP = "; none: inputs are aligned crops"

Command = TypeVar("Command", bound=Callable)


class _ModelFile(click.ParamType):
    """A shipped model's name (`runtime.named_models`) as its file, else a path."""

    name = "NAME|PATH"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None):
        from fiqa_cli.runtime.named_models import model_file

        if isinstance(value, Path):
            return value
        path = model_file(str(value))
        if path.is_dir():
            self.fail(f"{value} is a folder, not a model file", param, ctx)
        return path


def model_option(help: str) -> Callable[[Command], Command]:
    """--model NAME|PATH: a shipped model by name or an ONNX quality model file; unset means
    the embedded default."""
    from fiqa_cli.runtime.named_models import NAMED_MODELS

    return click.option(
        "--model",
        type=_ModelFile(),
        envvar=MODEL_ENVVAR,
        help=f"{help} NAME is a model fiqa ships: {', '.join(NAMED_MODELS)} (`./NAME` for a "
        "file of that name).",
    )


def roots_argument() -> Callable[[Command], Command]:
    """ROOT...: folders of ROOT/IDENTITY/ photos, handed to the command as `roots`, each
    given once. Identities are kept apart per root (folders of one name under two roots are
    two people)."""

    def once_each(ctx: click.Context, param: click.Parameter, roots: tuple[Path, ...]):
        seen = set()
        for root in roots:
            if root.resolve() in seen:
                raise click.BadParameter(f"{root} is given twice")
            seen.add(root.resolve())
        return roots

    return click.argument(
        "roots",
        metavar="ROOT...",
        nargs=-1,
        required=True,
        type=click.Path(path_type=Path, file_okay=False, exists=True),
        callback=once_each,
    )


def device_option(
    help: str | None = None, *, from_env: bool = False, tensorrt: bool = False
) -> Callable[[Command], Command]:
    """--device auto|cpu|cuda[|tensorrt] for onnxruntime; `from_env` also reads FIQA_DEVICE."""
    return click.option(
        "--device",
        type=click.Choice(DEVICES + (TENSORRT_DEVICE,) if tensorrt else DEVICES),
        default="auto",
        show_default=True,
        envvar=DEVICE_ENVVAR if from_env else None,
        help=help,
    )


def detector_option(
    help: str | None = None, *, allow_none: bool = True, from_env: bool = False
) -> Callable[[Command], Command]:
    """--detector; `allow_none` adds `none` (inputs are crops) to the choices and the help,
    `from_env` reads FIQA_DETECTOR."""
    return click.option(
        "--detector",
        type=click.Choice(DETECTORS + (NO_DETECTOR,) if allow_none else DETECTORS),
        default="auto",
        show_default=True,
        envvar=DETECTOR_ENVVAR if from_env else None,
        help=help or _DETECTOR_HELP + (_NO_DETECTOR_HELP if allow_none else "") + ".",
    )


def provider_options_option(provider: str, help: str) -> Callable[[Command], Command]:
    """--PROVIDER-option KEY=VALUE, repeatable, gathered into a dict `PROVIDER_options`."""
    return click.option(
        f"--{provider}-option",
        f"{provider}_options",
        metavar="KEY=VALUE",
        multiple=True,
        callback=lambda ctx, param, values: _key_values(values),
        help=help,
    )


def cuda_option() -> Callable[[Command], Command]:
    """--cuda-option, for every command that runs a model on CUDA."""
    return provider_options_option(
        "cuda",
        "onnxruntime CUDA provider option, repeatable (e.g. device_id=1, use_tf32=1, "
        "gpu_mem_limit=4294967296); fiqa's sessions default to use_tf32=0 (full fp32).",
    )


def _key_values(values: tuple[str, ...]) -> dict[str, str]:
    settings = {}
    for value in values:
        key, equals, setting = value.partition("=")
        if not key.strip() or not equals:
            raise click.BadParameter(f"expected KEY=VALUE, got {value!r}")
        settings[key.strip()] = setting.strip()
    return settings


def detector_model_option(*, must_exist: bool = False) -> Callable[[Command], Command]:
    """--detector-model: the SCRFD file that --detector auto|scrfd runs."""
    return click.option(
        "--detector-model",
        type=click.Path(path_type=Path, dir_okay=False, exists=must_exist),
        help="SCRFD ONNX file (default: searched in insightface's model root).",
    )


def faces_option(*, allow_all: bool = True) -> Callable[[Command], Command]:
    """--faces largest|central[|all]: which faces of a photo count (`runtime.face_choice`)."""
    choices = (LARGEST_FACE, CENTRAL_FACE) + ((ALL_FACES,) if allow_all else ())
    per_input = "one row per input" if allow_all else "one face per photo"
    return click.option(
        "--faces",
        type=click.Choice(choices),
        default=LARGEST_FACE,
        show_default=True,
        help=f"largest: {per_input}, its biggest face; central: {per_input}, the face "
        "nearest the image centre (datasets cut around their subject, such as LFW)"
        + ("; all: one row per face." if allow_all else "."),
    )


def batch_size_option(help: str) -> Callable[[Command], Command]:
    """--batch-size: face crops per inference batch (and whatever else `help` says); unset
    means CPU_BATCH_SIZE or CUDA_BATCH_SIZE, by where the model runs."""
    return click.option(
        "--batch-size",
        type=click.IntRange(min=1),
        help=f"{help} [default: {CPU_BATCH_SIZE} on CPU, {CUDA_BATCH_SIZE} on CUDA]",
    )


def profile_options(command: Command) -> Command:
    """--profile NAME|FILE and --require KEY=VALUE: a requirement profile to judge faces by."""
    command = click.option(
        "--require",
        "requirements",
        metavar="KEY=VALUE",
        multiple=True,
        help="Add or replace one requirement, repeatable: KEY a measure (native value), "
        "MEASURE_100 (score) or quality_100 (calibrated quality), VALUE MIN..MAX, MIN.., ..MAX, "
        "MIN (at least) or off.",
    )(command)
    command = click.option(
        "--profile",
        metavar="NAME|FILE",
        help="Judge each face against a requirement profile: built in 'icao' (passport-style) or "
        "'capture' (kiosk), or a TOML file; a failing face exits 3 (fiqa score: columns verdict "
        "and reasons; fiqa best: the frame is not acceptable).",
    )(command)
    return command


def profile_from_options(name: str | None, requirements: tuple[str, ...]) -> Profile | None:
    """The profile `--profile` and `--require` make, or None when neither is given."""
    if name is None and not requirements:
        return None
    from fiqa_cli.runtime.profiles import ProfileError, load_profile

    try:
        profile = load_profile(name).with_overrides(requirements)
    except ProfileError as error:
        raise click.BadParameter(str(error), param_hint="--profile/--require") from None
    if not profile.requirements:
        raise click.BadParameter("no requirements left", param_hint="--profile/--require")
    return profile


def labelled_photo_options(command: Command) -> Command:
    """--fr-model, --fr-mean, --fr-std, --detector, --detector-model, --faces, --device,
    --cuda-option, --min-images, --limit-ids and --max-images-per-id, handed to the command as one
    `photo_options` (`fiqa_cli.evaluation.labelled_photos.PhotoOptions`)."""

    @functools.wraps(command)
    def with_photo_options(*args: object, **kwargs: object) -> object:
        from fiqa_cli.evaluation.labelled_photos import PhotoOptions

        taken = {field.name: kwargs.pop(field.name) for field in fields(PhotoOptions)}
        return command(*args, photo_options=PhotoOptions(**taken), **kwargs)

    options = [
        click.option(
            "--fr-model",
            type=click.Path(path_type=Path, dir_okay=False, exists=True),
            required=True,
            help="ArcFace-style face-recognition ONNX model that produces the comparison scores.",
        ),
        click.option(
            "--fr-mean",
            type=float,
            default=FR_MEAN,
            show_default=True,
            help="FR input normalisation: (RGB pixel - mean) / std.",
        ),
        click.option("--fr-std", type=float, default=FR_STD, show_default=True),
        detector_option(),
        detector_model_option(),
        faces_option(allow_all=False),
        device_option(),
        cuda_option(),
        click.option(
            "--min-images",
            type=click.IntRange(min=2),
            default=2,
            show_default=True,
            help="Identities with fewer images are skipped (not with evaluate's --pairs).",
        ),
        click.option(
            "--limit-ids",
            type=click.IntRange(min=2),
            help="Use only the first N identities of each ROOT in name order (not with "
            "evaluate's --pairs).",
        ),
        click.option(
            "--max-images-per-id",
            type=click.IntRange(min=2),
            help="Use only the first N images of each identity in name order (not with evaluate's "
            "--pairs): "
            "mated pairs grow with the square of an identity's images, so one identity with "
            "hundreds (LFW's George W Bush: 530) otherwise holds most of them.",
        ),
    ]
    for option in reversed(options):
        with_photo_options = option(with_photo_options)
    return with_photo_options
