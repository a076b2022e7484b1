"""`--out FILE.parquet` (`runtime.parquet_rows`): one typed schema for every row group, a row
group every so many rows, the target replaced only when the run ends, and the rows so far
kept when it ends by an error or Ctrl-C."""

from __future__ import annotations

from pathlib import Path

import pytest

from fiqa_cli.runtime.best_shot import BEST_COLUMNS
from fiqa_cli.runtime.measure_kinds import MEASURE_NAMES, Measure
from fiqa_cli.runtime.rows import (
    COLUMNS,
    MEASURE_COLUMNS,
    OK,
    UNREADABLE,
    VERDICT_COLUMNS,
    Row,
    ScoreFileError,
    read_rows,
)

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
from fiqa_cli.runtime.parquet_rows import parquet_rows  # noqa: E402

ALL_COLUMNS = COLUMNS + MEASURE_COLUMNS + VERDICT_COLUMNS
MEASURED = Row(
    "a.jpg",
    OK,
    face=0,
    quality=0.5,
    det_score=0.9,
    bbox=(1.0, 2.0, 3.0, 4.0),
    measures={name: Measure(0.25, 60) for name in MEASURE_NAMES},
    quality_100=70,
    verdict="pass",
)
UNMEASURED = Row("b.jpg", UNREADABLE, message="not an image")


def test_every_row_group_has_the_one_explicit_schema(tmp_path: Path) -> None:
    out = tmp_path / "scores.parquet"
    with parquet_rows(str(out), ALL_COLUMNS, group_rows=2) as writer:
        # The first group's numbers are all empty: inferred types would be null there.
        for row in (UNMEASURED, UNMEASURED, MEASURED, MEASURED, UNMEASURED):
            writer.write_input([row])
    parquet = pq.ParquetFile(out)
    # 2 + 2 + the last row, written when the run ends.
    groups = [parquet.metadata.row_group(i).num_rows for i in range(parquet.num_row_groups)]
    assert groups == [2, 2, 1]
    schema = parquet.schema_arrow
    assert schema.names == list(ALL_COLUMNS)
    for text in ("path", "status", "message", "verdict", "reasons"):
        assert schema.field(text).type == pa.string()
    for whole in ("face", "quality_100", *(f"{name}_100" for name in MEASURE_NAMES)):
        assert schema.field(whole).type == pa.int64(), whole
    for real in ("quality", "det_score", "x1", "y1", "x2", "y2", *MEASURE_NAMES):
        assert schema.field(real).type == pa.float64(), real
    assert read_rows(out, other_columns=True)[2] == MEASURED.values(ALL_COLUMNS)


def test_best_columns_are_typed(tmp_path: Path) -> None:
    out = tmp_path / "best.parquet"
    record = {"group": "burst", "rank": 1, "frame": 7, "timestamp_ms": 233.3, **MEASURED.values()}
    with parquet_rows(str(out), BEST_COLUMNS) as writer:
        writer.write_records([record, {**record, "rank": None, "frame": None}])
    schema = pq.read_schema(out)
    assert [schema.field(c).type for c in ("group", "rank", "frame", "timestamp_ms")] == [
        pa.string(),
        pa.int64(),
        pa.int64(),
        pa.float64(),
    ]
    assert pq.read_table(out).to_pylist()[0] == record


def test_the_target_is_replaced_only_when_the_run_ends(tmp_path: Path) -> None:
    out = tmp_path / "scores.parquet"
    out.write_bytes(b"the previous run's file")
    with parquet_rows(str(out), COLUMNS) as writer:
        writer.write_input([MEASURED])
        assert out.read_bytes() == b"the previous run's file"
    assert [row["path"] for row in read_rows(out)] == ["a.jpg"]
    assert [path.name for path in tmp_path.iterdir()] == ["scores.parquet"]  # no staging left


@pytest.mark.parametrize("stop", [RuntimeError("a bug"), KeyboardInterrupt()])
def test_a_run_stopped_by_an_error_or_ctrl_c_keeps_its_rows(
    stop: BaseException, tmp_path: Path
) -> None:
    out = tmp_path / "scores.parquet"
    with pytest.raises(type(stop)), parquet_rows(str(out), COLUMNS) as writer:
        writer.write_input([MEASURED])
        writer.write_input([UNMEASURED])
        raise stop
    assert [row["path"] for row in read_rows(out)] == ["a.jpg", "b.jpg"]


def test_a_file_that_is_not_parquet_is_a_score_file_error(tmp_path: Path) -> None:
    out = tmp_path / "cut.parquet"
    out.write_bytes(b"PAR1 and no footer")  # as a run killed outright leaves it
    with pytest.raises(ScoreFileError, match="not a readable Parquet file"):
        read_rows(out)
