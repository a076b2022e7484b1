"""The rows `fiqa score` writes, their CSV and JSONL encodings, and reading them back for
`--resume`."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

COLUMNS = ("path", "face", "quality", "status", "det_score", "x1", "y1", "x2", "y2", "message")
FORMATS = ("csv", "jsonl")
OK, NO_FACE, UNREADABLE, ERROR = "ok", "no_face", "unreadable", "error"

# Rounding fixes the written values, so CSV and JSONL read back identically.
QUALITY_DECIMALS = 6
DET_SCORE_DECIMALS = 4
BOX_DECIMALS = 1


@dataclass(frozen=True)
class Row:
    path: str
    status: str
    face: int | None = None  # index in the image, 0 = largest box
    quality: float | None = None
    det_score: float | None = None
    bbox: Sequence[float] | None = None
    message: str = ""

    def values(self) -> dict[str, object]:
        """Column name -> value, None where the column is empty."""
        box = [None] * 4 if self.bbox is None else [_rounded(v, BOX_DECIMALS) for v in self.bbox]
        values = [
            self.path,
            self.face,
            _rounded(self.quality, QUALITY_DECIMALS),
            self.status,
            _rounded(self.det_score, DET_SCORE_DECIMALS),
            *box,
            self.message,
        ]
        return dict(zip(COLUMNS, values, strict=True))


def _rounded(value: float | None, decimals: int) -> float | None:
    return None if value is None else round(float(value), decimals)


def format_for(out: str, requested: str | None) -> str:
    """The explicit --format, else the output's suffix, else csv."""
    if requested:
        return requested
    suffix = Path(out).suffix.lower().lstrip(".")
    return {"jsonl": "jsonl", "ndjson": "jsonl"}.get(suffix, "csv")


class RowWriter:
    """Writes the rows of one input at a time, in one write and flushed, so that a reader
    (or a killed run's `--resume`) only ever sees whole inputs."""

    def __init__(self, stream: TextIO, fmt: str, write_header: bool):
        self._stream = stream
        self._format = fmt
        if fmt == "csv" and write_header:
            self._write_text(_csv_text([dict(zip(COLUMNS, COLUMNS, strict=True))]))

    def write_input(self, rows: Sequence[Row]) -> None:
        records = [row.values() for row in rows]
        if self._format == "csv":
            text = _csv_text(records)
        else:
            text = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
        self._write_text(text)

    def _write_text(self, text: str) -> None:
        self._stream.write(text)
        self._stream.flush()


def _csv_text(records: list[dict[str, object]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writerows({k: "" if v is None else v for k, v in record.items()} for record in records)
    return buffer.getvalue()


class ResumeError(Exception):
    """The existing output file cannot be resumed (not written by `fiqa score`)."""


def prepare_resume(path: Path, fmt: str) -> dict[str, float | None]:
    """Inputs already answered in `path`, each with its best `ok` quality (None if none).

    A partly written last line (a killed run) is cut off first, so its input is redone."""
    if not path.exists():
        return {}
    data = path.read_bytes()
    complete = data[: data.rfind(b"\n") + 1]
    if len(complete) != len(data):
        with path.open("r+b") as stream:
            stream.truncate(len(complete))
    text = complete.decode("utf-8", errors="surrogateescape")
    records = _csv_records(text, path) if fmt == "csv" else _jsonl_records(text, path)
    answered: dict[str, float | None] = {}
    for record in records:
        best = answered.setdefault(record["path"], None)
        quality = record["quality"] if record["status"] == OK else None
        if quality is not None and (best is None or quality > best):
            answered[record["path"]] = quality
    return answered


def _csv_records(text: str, path: Path) -> list[dict]:
    if not text:
        return []
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if tuple(reader.fieldnames or ()) != COLUMNS:
        raise ResumeError(f"{path}: first line is not the fiqa CSV header {','.join(COLUMNS)}")
    return [
        {**record, "quality": float(record["quality"]) if record["quality"] else None}
        for record in reader
    ]


def _jsonl_records(text: str, path: Path) -> list[dict]:
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            record = json.loads(line)
            records.append({key: record[key] for key in ("path", "status", "quality")})
        except (ValueError, KeyError, TypeError):
            raise ResumeError(f"{path}:{number}: not a fiqa JSONL row") from None
    return records
