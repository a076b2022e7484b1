"""The rows `fiqa score` writes, the table of file formats that hold them (`ROW_FORMATS`), and
reading them back (for `--resume` and `fiqa evaluate`)."""

from __future__ import annotations

import contextlib
import csv
import importlib.util
import io
import json
import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol, TextIO

from fiqa_cli.errors import FiqaError
from fiqa_cli.runtime.measure_kinds import MEASURE_NAMES, NOT_ASSESSED, Measure
from fiqa_cli.runtime.output_file import open_output

COLUMNS = ("path", "face", "quality", "status", "det_score", "x1", "y1", "x2", "y2", "message")
# `fiqa score --measures`: the calibrated quality (`fiqa_cli.runtime.calibration`), then each
# measure's native value and its 0-100 score; after COLUMNS.
QUALITY_100 = "quality_100"
MEASURE_COLUMNS = (QUALITY_100,) + tuple(
    column for name in MEASURE_NAMES for column in (name, f"{name}_100")
)
# `fiqa score --landmarks`: the detector's five points, x and y in the frame of the box columns
# (the decoded image, after EXIF rotation); after the measures.
LANDMARK_POINTS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
LANDMARK_COLUMNS = tuple(f"{point}_{axis}" for point in LANDMARK_POINTS for axis in "xy")
# `fiqa score --profile`: the judgement of each row, after everything else.
VERDICT_COLUMNS = ("verdict", "reasons")
PASS, FAIL = "pass", "fail"
OK, NO_FACE, UNREADABLE, ERROR = "ok", "no_face", "unreadable", "error"

# Rounding fixes the written values, so CSV and JSONL read back identically.
QUALITY_DECIMALS = 6
DET_SCORE_DECIMALS = 4
BOX_DECIMALS = 1
# A message is one line of text for a person; exception text can be far longer.
MAX_MESSAGE_CHARS = 2000
# What a cell of a file fiqa wrote can hold: a path from the command line is under 128 KiB
# (the OS's limit on one argument), one from stdin under 64 KiB, a message under 2000
# characters; Python's default 128 KiB limit would refuse the longest paths.
_MAX_CELL_CHARS = 1024 * 1024
_TAIL_CHUNK = 64 * 1024
MEASURE_DECIMALS = 4
# How a row read back turns its numeric columns from CSV text into numbers.
NUMBER_COLUMNS = {
    "face": int,
    "quality": float,
    "det_score": float,
    **dict.fromkeys(("x1", "y1", "x2", "y2"), float),
}
# The type of every column fiqa writes, for formats whose columns are typed (Parquet): one
# schema for every row group, however empty a group's numbers. `fiqa best` adds its own
# columns (best_shot.BEST_COLUMNS) before COLUMNS.
COLUMN_TYPES: dict[str, type] = {
    **dict.fromkeys(("path", "status", "message", "verdict", "reasons", "group"), str),
    **NUMBER_COLUMNS,
    QUALITY_100: int,
    **{name: float for name in MEASURE_NAMES},
    **{f"{name}_100": int for name in MEASURE_NAMES},
    **dict.fromkeys(LANDMARK_COLUMNS, float),
    "rank": int,
    "frame": int,
    "timestamp_ms": float,
}


Record = dict[str, object]  # column -> value, None for an empty cell


@dataclass(frozen=True)
class RowFormat:
    """One file format of score rows: how `fiqa score` and `fiqa best` write it, how `--resume`
    and the readers of score files read it back, and whether `fiqa ray-score` writes it."""

    suffixes: tuple[str, ...]  # an --out with one of these (no dot, lower case) selects it
    # Rows can be added one input at a time at the end of a file (streamed writing, --resume).
    appends_rows: bool
    # Records (of the given columns) as text; None: written only by Ray Data, see ray_write.
    encode: Callable[[Sequence[Record], Sequence[str]], str] | None = None
    # Text before the rows (the columns' names), or None for a format without a header.
    header: Callable[[Sequence[str]], str] | None = None
    # A file's lines (read one at a time, `_lines`) -> its typed rows, streamed (`read_rows`);
    # other_columns as there.
    read: Callable[[Iterator[str], Path, bool], Iterator[Record]] | None = None
    # The columns a file holds, from its first line and first row (None: no row to tell).
    columns_of: Callable[[str, Record | None], tuple[str, ...] | None] | None = None
    ray_write: str | None = None  # the ray.data.Dataset method that writes it (ray-score)
    # A format fiqa writes whole, through a writer of its own: `write_file(out, columns)`, a
    # context manager that yields a RecordSink, instead of `encode` into the locked --out.
    # Never to stdout.
    write_file: Callable[[str, Sequence[str]], AbstractContextManager[RecordSink]] | None = None
    # Reads a whole file (a format not read a line at a time): as `read`, from its path.
    read_file: Callable[[Path, bool], Iterator[Record]] | None = None
    # The module the format needs beyond fiqa's requirements, and the extra that installs it.
    needs: tuple[str, str] | None = None


class RecordSink(Protocol):
    """What a command writes rows to (`open_rows`): a RowWriter, or a format's own writer."""

    def write_input(self, rows: Sequence[Row]) -> None: ...

    def write_records(self, records: Sequence[Record]) -> None: ...


@dataclass(frozen=True)
class Row:
    path: str
    status: str
    face: int | None = None  # index in the image, 0 = largest box
    quality: float | None = None
    det_score: float | None = None
    bbox: Sequence[float] | None = None
    message: str = ""
    measures: Mapping[str, Measure] | None = None  # None: not measured (no face, unreadable)
    quality_100: int | None = None  # None: no quality, or a model without a calibration
    verdict: str | None = None  # PASS or FAIL against a profile; None when not judged
    reasons: str = ""
    # x, y of each of LANDMARK_POINTS in turn; None without a detected face
    landmarks: Sequence[float] | None = None

    def values(self, columns: Sequence[str] = COLUMNS) -> dict[str, object]:
        """Column name -> value for `columns` (`row_columns`), None where the column is empty;
        a measure not assessed has an empty value and a score of -1, and so has quality_100
        without a calibration."""
        values = self._base_values()
        if len(columns) > len(COLUMNS):
            values.update(self._measure_values())
            values.update(self._landmark_values())
            values.update(verdict=self.verdict, reasons=self.reasons)
        return {column: values[column] for column in columns}

    def _landmark_values(self) -> dict[str, object]:
        if self.landmarks is None:
            return dict.fromkeys(LANDMARK_COLUMNS)
        points = [_rounded(value, BOX_DECIMALS) for value in self.landmarks]
        return dict(zip(LANDMARK_COLUMNS, points, strict=True))

    def _measure_values(self) -> dict[str, object]:
        values: dict[str, object] = {
            QUALITY_100: NOT_ASSESSED if self.quality_100 is None else self.quality_100
        }
        for name in MEASURE_NAMES:
            measure = (self.measures or {}).get(name)
            assessed = measure is not None and measure.value is not None
            values[name] = _rounded(measure.value, MEASURE_DECIMALS) if assessed else None
            values[f"{name}_100"] = measure.score if measure is not None else NOT_ASSESSED
        return values

    def _base_values(self) -> dict[str, object]:
        box = [None] * 4 if self.bbox is None else [_rounded(v, BOX_DECIMALS) for v in self.bbox]
        values = [
            self.path,
            self.face,
            _rounded(self.quality, QUALITY_DECIMALS),
            self.status,
            _rounded(self.det_score, DET_SCORE_DECIMALS),
            *box,
            _capped(self.message),
        ]
        return dict(zip(COLUMNS, values, strict=True))


def row_columns(*, measures: bool, landmarks: bool, judged: bool) -> tuple[str, ...]:
    """The columns of a run's rows: COLUMNS, then the measures (`--measures`), the landmarks
    (`--landmarks`) and the verdict (`--profile`, always last) when asked for."""
    return (
        COLUMNS
        + (MEASURE_COLUMNS if measures else ())
        + (LANDMARK_COLUMNS if landmarks else ())
        + (VERDICT_COLUMNS if judged else ())
    )


def _capped(message: str) -> str:
    if len(message) <= MAX_MESSAGE_CHARS:
        return message
    return message[: MAX_MESSAGE_CHARS - 3] + "..."


def _rounded(value: float | None, decimals: int) -> float | None:
    return None if value is None else round(float(value), decimals)


def format_for(out: str, requested: str | None) -> str:
    """The explicit --format, else the format whose suffixes hold the output's, else csv."""
    return requested or _format_of_suffix(out) or DEFAULT_FORMAT


def _format_of_suffix(out: str) -> str | None:
    suffix = Path(out).suffix.lower().lstrip(".")
    return next((name for name in FORMATS if suffix in ROW_FORMATS[name].suffixes), None)


# --out suffixes that name a format fiqa cannot write, and why.
REFUSED_SUFFIXES = {
    "json": "a JSON array cannot be appended row by row; name it .jsonl for JSON Lines "
    "(one JSON object a line, which json.loads reads a line at a time)",
}


class OutputFormatError(FiqaError):
    """The output's name, --format and options do not go together (a usage error)."""


def output_format(out: str, requested: str | None, *, resume: bool = False) -> str:
    """The format a command writes `out` ('-': stdout) in: the one its suffix names, which an
    explicit --format (`requested`) must not contradict; csv for '-' and any other suffix,
    unless --format says otherwise. OutputFormatError says what does not go together."""
    suffix = "" if out == "-" else Path(out).suffix.lower().lstrip(".")
    if suffix in REFUSED_SUFFIXES:
        raise OutputFormatError(f"--out {out}: {REFUSED_SUFFIXES[suffix]}")
    named = None if out == "-" else _format_of_suffix(out)
    if requested and named and requested != named:
        raise OutputFormatError(
            f"--format {requested} contradicts --out {out}, a {named} name: drop --format "
            f"or name the file .{ROW_FORMATS[requested].suffixes[0]}"
        )
    fmt = requested or named or DEFAULT_FORMAT
    entry = ROW_FORMATS[fmt]
    if entry.write_file is not None and out == "-":
        raise OutputFormatError(f"{fmt} is not written to stdout: give --out FILE.{suffix or fmt}")
    if resume and not entry.appends_rows:
        appendable = ", ".join(name for name in FORMATS if ROW_FORMATS[name].appends_rows)
        raise OutputFormatError(
            f"--resume needs a format that rows can be appended to ({appendable}), not {fmt}"
        )
    missing = _missing_module(fmt)
    if missing:
        raise OutputFormatError(missing)
    return fmt


def _missing_module(fmt: str) -> str | None:
    """What installs the module `fmt` needs, when it is not installed; else None."""
    if ROW_FORMATS[fmt].needs is None or importlib.util.find_spec(ROW_FORMATS[fmt].needs[0]):
        return None
    module, extra = ROW_FORMATS[fmt].needs
    return f"{fmt} files need {module}, which is not installed: pip install 'fiqa[{extra}]'"


@contextlib.contextmanager
def open_rows(
    out: str,
    fmt: str,
    columns: Sequence[str] = COLUMNS,
    *,
    append: bool = False,
    before_rows: Callable[[], object] | None = None,
) -> Iterator[RowWriter | RecordSink]:
    """The writer of one run's rows to `out` ('-': stdout) in `fmt` (from `output_format`).
    A text format goes to the locked --out (`output_file`); `before_rows` runs with it locked,
    before the header is written (`--resume` reads what the file holds then), and `append`
    keeps what it holds. A format with its own writer (`write_file`) writes a file of its own."""
    entry = ROW_FORMATS[fmt]
    if entry.write_file is not None:
        with entry.write_file(out, columns) as sink:
            yield sink
        return
    with open_output(out, append=append) as stream:
        if before_rows is not None:
            before_rows()
        has_rows = out != "-" and Path(out).is_file() and Path(out).stat().st_size > 0
        yield RowWriter(stream, fmt, write_header=not (append and has_rows), columns=columns)


class RowWriter:
    """Writes the rows of one input at a time, in one write and flushed, so that a reader
    (or a killed run's `--resume`) only ever sees whole inputs. `columns` are those of the
    records given to `write_records` (`fiqa best` adds its own before the usual ones)."""

    def __init__(
        self, stream: TextIO, fmt: str, write_header: bool, columns: Sequence[str] = COLUMNS
    ):
        self._stream = stream
        self._format = ROW_FORMATS[fmt]
        self._columns = tuple(columns)
        if write_header and self._format.header is not None:
            self._write_text(self._format.header(self._columns))

    def write_input(self, rows: Sequence[Row]) -> None:
        self.write_records([row.values(self._columns) for row in rows])

    def write_records(self, records: Sequence[Record]) -> None:
        """Records of column -> value (None for an empty cell), written together."""
        self._write_text(self._format.encode(records, self._columns))

    def _write_text(self, text: str) -> None:
        self._stream.write(text)
        self._stream.flush()


def _csv_header(columns: Sequence[str]) -> str:
    return _csv_text([dict(zip(columns, columns, strict=True))], columns)


def _csv_text(records: Sequence[Record], columns: Sequence[str]) -> str:
    buffer = io.StringIO()
    plain = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    # The csv module quotes only the line terminator's characters: a carriage return in a
    # file name must be quoted too, or a reader splits the row there.
    quoted = csv.DictWriter(
        buffer, fieldnames=columns, lineterminator="\n", quoting=csv.QUOTE_NONNUMERIC
    )
    for record in records:
        cells = {k: "" if v is None else v for k, v in record.items()}
        has_return = any(isinstance(v, str) and "\r" in v for v in cells.values())
        (quoted if has_return else plain).writerow(cells)
    return buffer.getvalue()


def _jsonl_text(records: Sequence[Record], columns: Sequence[str]) -> str:
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)


def _csv_columns(first_line: str, first_row: Record | None) -> tuple[str, ...] | None:
    return tuple(next(csv.reader([first_line]), [])) if first_line else None


def _jsonl_columns(first_line: str, first_row: Record | None) -> tuple[str, ...] | None:
    return tuple(first_row) if first_row is not None else None


class ScoreFileError(FiqaError):
    """The file is not one that `fiqa score` writes; the message says where."""


def read_rows(
    path: Path, fmt: str | None = None, *, other_columns: bool = False
) -> list[dict[str, object]]:
    """The rows of a `fiqa score` output (`fmt` a format's name, default by suffix) as column ->
    value: numbers as int or float, None where a column is empty or absent.

    `other_columns` also accepts files with more columns than `COLUMNS` (`fiqa best` output,
    later score formats) and keeps them as written: CSV text, JSONL values."""
    fmt = format_for(str(path), fmt)
    entry = ROW_FORMATS[fmt]
    if entry.read_file is not None:
        if missing := _missing_module(fmt):
            raise ScoreFileError(f"cannot read {path}: {missing}")
        return list(entry.read_file(path, other_columns))
    with path.open("rb") as stream:
        return list(entry.read(_lines(stream), path, other_columns))


def _lines(stream: BinaryIO, whole_only: bool = False) -> Iterator[str]:
    """The lines of `stream` as text, read one at a time; `whole_only`: up to the last one
    that ends in a newline. Only "\n" ends a line: a carriage return inside a quoted CSV cell
    is part of a file name, and JSON leaves some line separators (U+2028, U+0085) unescaped."""
    for line in stream:
        if whole_only and not line.endswith(b"\n"):
            return
        yield line.decode("utf-8", errors="surrogateescape")


def _csv_rows(lines: Iterator[str], path: Path, other_columns: bool) -> Iterator[dict[str, object]]:
    csv.field_size_limit(max(csv.field_size_limit(), _MAX_CELL_CHARS))
    reader = csv.DictReader(lines)
    try:
        if reader.fieldnames is None:  # an empty file
            return
        header = tuple(reader.fieldnames)
        # Columns after COLUMNS (--measures, --profile) are read past.
        if not (
            set(COLUMNS) <= set(header) if other_columns else header[: len(COLUMNS)] == COLUMNS
        ):
            raise ScoreFileError(
                f"{path}: first line is not the fiqa CSV header {','.join(COLUMNS)}"
            )
        for number, record in enumerate(reader, start=2):
            yield _typed(record, f"{path}:{number}", other_columns)
    except csv.Error as error:
        raise ScoreFileError(f"{path}:{reader.line_num}: not a fiqa score row ({error})") from None


def _jsonl_rows(
    lines: Iterator[str], path: Path, other_columns: bool
) -> Iterator[dict[str, object]]:
    for number, line in enumerate(lines, start=1):
        if line.strip():
            try:
                record = json.loads(line)
            except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
                raise ScoreFileError(f"{path}:{number}: not a fiqa score row") from None
            yield _typed(record, f"{path}:{number}", other_columns)


def _typed(record: object, where: str, other_columns: bool = False) -> dict[str, object]:
    """CSV cells are text and JSONL values typed already; both end up typed."""
    try:
        row = {column: record.get(column) for column in COLUMNS}
        if other_columns:
            row.update((key, value) for key, value in record.items() if key not in row)
        if not isinstance(row["path"], str) or not isinstance(row["status"], str):
            raise TypeError
        for column, convert in NUMBER_COLUMNS.items():
            if isinstance(row[column], bool):  # JSON true/false are no numbers
                raise TypeError
            row[column] = None if row[column] in (None, "") else convert(row[column])
            if isinstance(row[column], float) and not math.isfinite(row[column]):
                raise ValueError  # fiqa writes none: a non-finite quality is an error row
    except (AttributeError, TypeError, ValueError):
        raise ScoreFileError(f"{where}: not a fiqa score row") from None
    return row


def prepare_resume(
    path: Path, fmt: str, columns: Sequence[str] = COLUMNS
) -> dict[str, float | None]:
    """Inputs already answered in `path`, each with its best `ok` quality (None if none).

    The file is read a line at a time, keeping only that. It must be fiqa output with the
    `columns` this run writes (a resumed file never mixes row layouts); only then is a partly
    written last line (a killed run) cut off, so its input is redone."""
    if not path.exists():
        return {}
    answered: dict[str, float | None] = {}
    first_row = None
    with path.open("rb") as stream:
        rows = ROW_FORMATS[fmt].read(_lines(stream, whole_only=True), path, True)
        for row in rows:
            first_row = first_row or row
            best = answered.setdefault(row["path"], None)
            quality = row["quality"] if row["status"] == OK else None
            if quality is not None and (best is None or quality > best):
                answered[row["path"]] = quality
        stream.seek(0)
        first_line = next(_lines(stream, whole_only=True), "").rstrip("\r\n")
        complete = _whole_lines_length(stream)
    found = ROW_FORMATS[fmt].columns_of(first_line, first_row)
    if found is not None and found != tuple(columns):
        extra = [column for column in found if column not in COLUMNS]
        wanted = [column for column in columns if column not in COLUMNS]
        raise ScoreFileError(
            f"{path} has the columns of another run ({len(found)}: "
            f"{', '.join(extra) or 'no extra ones'}); this run writes {len(columns)} "
            f"({', '.join(wanted) or 'no extra ones'}): resume with the same --measures and "
            "--profile options, or write to a new file"
        )
    if complete != path.stat().st_size:
        with path.open("r+b") as stream:
            stream.truncate(complete)
    return answered


def _whole_lines_length(stream: BinaryIO) -> int:
    """The bytes of `stream` up to and including its last newline, found from the end."""
    position = stream.seek(0, os.SEEK_END)
    while position > 0:
        step = min(_TAIL_CHUNK, position)
        position -= step
        stream.seek(position)
        newline = stream.read(step).rfind(b"\n")
        if newline >= 0:
            return position + newline + 1
    return 0


def _parquet_writer(out: str, columns: Sequence[str]) -> AbstractContextManager[RecordSink]:
    # Imported only when written: pyarrow is an optional extra, and slow to import.
    from fiqa_cli.runtime.parquet_rows import parquet_rows

    return parquet_rows(out, columns)


def _parquet_rows(path: Path, other_columns: bool) -> Iterator[Record]:
    from fiqa_cli.runtime.parquet_rows import read_parquet

    for number, record in enumerate(read_parquet(path), start=1):
        yield _typed(record, f"{path}: row {number}", other_columns)


# Every format by name. A new format is one entry here; `fiqa score` and
# `fiqa best` offer those with an `encode`, `fiqa ray-score` those with a `ray_write`
# (tests/test_rows.py checks every entry).
ROW_FORMATS: dict[str, RowFormat] = {
    "csv": RowFormat(
        suffixes=("csv",),
        appends_rows=True,
        encode=_csv_text,
        header=_csv_header,
        read=_csv_rows,
        columns_of=_csv_columns,
        ray_write="write_csv",
    ),
    "jsonl": RowFormat(
        suffixes=("jsonl", "ndjson"),
        appends_rows=True,
        encode=_jsonl_text,
        read=_jsonl_rows,
        columns_of=_jsonl_columns,
    ),
    # Written whole (a Parquet file is readable only once its footer is written, at its end):
    # see parquet_rows for what a killed run keeps.
    "parquet": RowFormat(
        suffixes=("parquet",),
        appends_rows=False,
        ray_write="write_parquet",
        write_file=_parquet_writer,
        read_file=_parquet_rows,
        needs=("pyarrow", "parquet"),
    ),
}
DEFAULT_FORMAT = "csv"
FORMATS = tuple(
    name
    for name, entry in ROW_FORMATS.items()
    if entry.encode is not None or entry.write_file is not None
)
RAY_FORMATS = tuple(name for name, entry in ROW_FORMATS.items() if entry.ray_write is not None)
