"""Score rows as one Parquet file (`--out FILE.parquet`), through pyarrow (the `parquet` extra).

A Parquet file is readable only once its footer, written last, is there, and it cannot be
appended to. The rows are written in row groups of `ROW_GROUP_ROWS` into a private file beside
the target (`safe_write.replacing`), renamed over the target when the run ends: also when it
ends by an error or Ctrl-C, for the writer is closed first and keeps every row given to it.
A run killed outright (SIGKILL, power loss) never writes the footer and leaves no output (its
unfinished file stays in a `.fiqa-*` folder beside the target): CSV and JSONL, written a line
at a time, are the formats that keep the rows of such a run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from fiqa_cli.runtime.output_file import OutputError
from fiqa_cli.runtime.rows import COLUMN_TYPES, Record, Row, ScoreFileError
from fiqa_cli.runtime.safe_write import replacing

# Rows a row group holds: a reader holds about one group's rows at a time.
ROW_GROUP_ROWS = 4096
_ARROW_TYPES = {int: pa.int64(), float: pa.float64(), str: pa.string()}


def arrow_schema(columns: Sequence[str]) -> pa.Schema:
    """The typed columns of rows (`rows.COLUMN_TYPES`), the same for every row group."""
    return pa.schema([(column, _ARROW_TYPES[COLUMN_TYPES[column]]) for column in columns])


def arrow_value(value: object) -> object:
    """Arrow strings must be UTF-8: a file name that is not (held as surrogate escapes) is
    written with \\xNN escapes for its odd bytes rather than failing the whole output."""
    if not isinstance(value, str):
        return value
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def arrow_table(records: Sequence[Record], schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pylist(
        [{column: arrow_value(value) for column, value in record.items()} for record in records],
        schema=schema,
    )


class ParquetRowWriter:
    """Rows of `columns` into the Parquet file `path`, a row group every `group_rows` rows;
    `shown` is the output's name in messages. A fault of the file is one OutputError."""

    def __init__(
        self, path: Path, columns: Sequence[str], shown: str, group_rows: int = ROW_GROUP_ROWS
    ):
        self._columns = tuple(columns)
        self._schema = arrow_schema(self._columns)
        self._shown = shown
        self._group_rows = group_rows
        self._pending: list[Record] = []
        self._writer: pq.ParquetWriter = self._guarded(pq.ParquetWriter, str(path), self._schema)

    def write_input(self, rows: Sequence[Row]) -> None:
        self.write_records([row.values(self._columns) for row in rows])

    def write_records(self, records: Sequence[Record]) -> None:
        self._pending.extend(records)
        if len(self._pending) >= self._group_rows:
            self._write_group()

    def close(self) -> None:
        """Write the rows still pending and the footer."""
        try:
            if self._pending:
                self._write_group()
        finally:
            self._guarded(self._writer.close)

    def _write_group(self) -> None:
        table = arrow_table(self._pending, self._schema)
        self._pending = []
        self._guarded(self._writer.write_table, table)

    def _guarded(self, action: Callable[..., object], *args: object) -> object:
        try:
            return action(*args)
        except OSError as error:  # pyarrow's IO errors are OSErrors: a full disk, say
            raise OutputError(f"cannot write {self._shown}: {error}") from None


@contextlib.contextmanager
def parquet_rows(
    out: str, columns: Sequence[str], group_rows: int = ROW_GROUP_ROWS
) -> Iterator[ParquetRowWriter]:
    """A ParquetRowWriter whose file replaces `out` when the block ends, however it ends (an
    exception, Ctrl-C): the rows written so far are kept, and the exception raised after."""
    stopped: BaseException | None = None
    with replacing(out) as path:
        writer = ParquetRowWriter(path, columns, shown=out, group_rows=group_rows)
        try:
            yield writer
        except BaseException as error:  # KeyboardInterrupt too: the rows so far are kept
            stopped = error
        writer.close()
    if stopped is not None:
        raise stopped


def read_parquet(path: Path) -> Iterator[Record]:
    """The rows of a Parquet file, one row group at a time."""
    try:
        parquet = pq.ParquetFile(path)
        for group in range(parquet.num_row_groups):
            yield from parquet.read_row_group(group).to_pylist()
    except (OSError, pa.ArrowException) as error:
        raise ScoreFileError(f"{path}: not a readable Parquet file ({error})") from None
