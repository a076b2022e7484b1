"""Which quality model wrote a `fiqa score --out FILE`, recorded beside it so that `--resume`
never continues one model's rows with another's (scores, `quality_100` and `--fail-under` all
change meaning with the model and its calibration).

The record is `FILE.fiqa-model.json`, so the output's own columns stay as they are: the sha256
of the model file, the model's `fiqa.source_sha256` (its training checkpoint) and the sha256 of
its `quality_100` calibration, with the file as given and the calibration in words for people.
A run that starts FILE afresh writes it (whole or not at all: written beside it, then renamed).

`--resume` continues FILE only when the record names the same model file (the same bytes: the
same weights and the same calibration). It refuses another model, or the same weights under
another calibration, naming which. An output without a record was written by a fiqa from before
records (or its record was deleted): those versions shipped `UNRECORDED_DEFAULT` (v5) as their
default, so its rows are most likely v5's. Such a file is continued, with a warning, only by a
run of that very model file, which then writes the record; any other model is refused, since
nothing shows that the rows are its own. A file without rows yet has nothing to mix: any model
continues it and writes its record.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fiqa_cli.errors import FiqaError
from fiqa_cli.model_contract import META_SOURCE_SHA256
from fiqa_cli.runtime.named_models import UNRECORDED_DEFAULT, named_model_path
from fiqa_cli.runtime.safe_write import UnsafeTargetError, write_replacing

if TYPE_CHECKING:
    from fiqa_cli.runtime.quality_model import QualityModel

RECORD_SUFFIX = ".fiqa-model.json"
RECORD_FORMAT = "fiqa-model-record"
RECORD_VERSION = 1
_HASH_CHUNK = 1 << 20


class ModelRecordError(FiqaError):
    """An output that this run must not continue; the message says why and what to do."""


@dataclass(frozen=True)
class ModelRecord:
    """What identifies the model that wrote an output's rows."""

    model_sha256: str
    source_sha256: str | None  # the training checkpoint the model was exported from
    calibration_sha256: str | None  # None: no quality_100 calibration
    model: str  # the model file as the run was given it, for people
    calibration: str | None  # the calibration in words, for people


def model_record(model: QualityModel) -> ModelRecord:
    """The record of a loaded quality model."""
    calibration = model.calibration
    return ModelRecord(
        model_sha256=file_sha256(model.path),
        source_sha256=model.metadata.get(META_SOURCE_SHA256),
        calibration_sha256=None
        if calibration is None
        else hashlib.sha256(calibration.to_json().encode()).hexdigest(),
        model=str(model.path),
        calibration=None if calibration is None else calibration.describe(),
    )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def record_path(out: Path) -> Path:
    return out.with_name(out.name + RECORD_SUFFIX)


def write_record(out: Path, record: ModelRecord) -> None:
    """The record of `out`, replaced whole."""
    text = json.dumps(
        {"format": RECORD_FORMAT, "version": RECORD_VERSION, **asdict(record)}, indent=1
    )
    try:
        write_replacing(record_path(out), (text + "\n").encode())
    except UnsafeTargetError as error:
        raise ModelRecordError(f"{error} (the record of the model that writes {out})") from None


def read_record(out: Path) -> ModelRecord | None:
    """The record of `out`; None when there is none."""
    path = record_path(out)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.pop("format") != RECORD_FORMAT or data.pop("version") != RECORD_VERSION:
            raise ValueError
        return ModelRecord(**data)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise ModelRecordError(f"cannot read {path}: {error.strerror or error}") from None
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
        raise ModelRecordError(
            f"{path} is not a fiqa model record: delete it only if you know which model "
            f"wrote {out}, and resume with that one"
        ) from None


def check_resume(out: Path, record: ModelRecord, has_rows: bool) -> str | None:
    """Whether the run recorded as `record` may continue `out` (see the module docstring):
    raises ModelRecordError when not; else returns a warning or None, and leaves `out` with
    this run's record."""
    found = read_record(out)
    if found is not None and found.model_sha256 == record.model_sha256:
        return None
    if found is None or not has_rows:
        warning = None if not has_rows else _unrecorded(out, record)
        write_record(out, record)
        return warning
    if found.source_sha256 is not None and found.source_sha256 == record.source_sha256:
        what = (
            f"another calibration of this model ({found.calibration or 'none'}; this run's: "
            f"{record.calibration or 'none'})"
        )
    else:
        what = f"another model ({found.model}, sha256 {found.model_sha256[:12]})"
    raise ModelRecordError(
        f"cannot resume: the rows of {out} were written by {what}; scores of two models or "
        "calibrations do not mix: resume with that model (--model), or write to a new file"
    )


def _unrecorded(out: Path, record: ModelRecord) -> str:
    """The warning for continuing an output without a record, or ModelRecordError."""
    legacy = named_model_path(UNRECORDED_DEFAULT)
    if legacy is None or not legacy.is_file() or file_sha256(legacy) != record.model_sha256:
        raise ModelRecordError(
            f"cannot resume: {out} has no record of the model that wrote its rows "
            f"({record_path(out).name}); fiqa before model records wrote none, and its default "
            f"model was {UNRECORDED_DEFAULT}: if that wrote them, resume with --model "
            f"{UNRECORDED_DEFAULT}; otherwise write to a new file"
        )
    return (
        f"{out} has no record of the model that wrote its rows: taken to be "
        f"{UNRECORDED_DEFAULT}, the default of fiqa before model records, which this run uses"
    )
