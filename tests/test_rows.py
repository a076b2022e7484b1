"""The table of row formats (`rows.ROW_FORMATS`): every format a command offers is an entry, and
each entry writes rows that read back as written, appended input by input where it says so."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from fiqa_cli.cli import main
from fiqa_cli.runtime.measure_kinds import MEASURE_NAMES, Measure
from fiqa_cli.runtime.output_file import open_output
from fiqa_cli.runtime.rows import (
    COLUMNS,
    DEFAULT_FORMAT,
    FORMATS,
    MEASURE_COLUMNS,
    NO_FACE,
    OK,
    RAY_FORMATS,
    ROW_FORMATS,
    UNREADABLE,
    VERDICT_COLUMNS,
    Row,
    RowWriter,
    format_for,
    prepare_resume,
    read_rows,
)

# The formats users have (`--format` of score and best, and the --out suffixes that select
# them; ray-score's --format), each of which must stay an entry of the table.
BY_SUFFIX = {"csv": "csv", "jsonl": "jsonl", "ndjson": "jsonl"}
ON_RAY = {"csv", "parquet"}
ALL_COLUMNS = COLUMNS + MEASURE_COLUMNS + VERDICT_COLUMNS

ROWS = [
    Row("plain.jpg", OK, face=0, quality=0.5, det_score=0.9, bbox=(1.0, 2.0, 30.5, 40.0)),
    Row("plain.jpg", OK, face=1, quality=0.75, det_score=0.8, bbox=(5.0, 6.0, 7.0, 8.0)),
    Row('a, "quoted"\r\nname\u2028.jpg', NO_FACE, message="no face found"),
    Row("caf\udce9.jpg", UNREADABLE, message="not an image: 'x'"),
    Row(
        "measured.png",
        OK,
        face=0,
        quality=-0.25,
        det_score=1.0,
        bbox=(0.0, 0.0, 1.0, 1.0),
        measures={name: Measure(0.5, 50) for name in MEASURE_NAMES},
        quality_100=40,
        verdict="fail",
        reasons="too dark; photo blurred",
    ),
]


def test_every_format_users_have_is_an_entry_offered_by_its_commands() -> None:
    assert set(FORMATS) >= set(BY_SUFFIX.values()) and set(RAY_FORMATS) >= ON_RAY
    assert DEFAULT_FORMAT == FORMATS[0] == "csv"
    for suffix, name in BY_SUFFIX.items():
        assert format_for(f"out/scores.{suffix.upper()}", None) == name
        assert format_for(f"scores.{suffix}", "csv") == "csv"  # --format wins
    assert format_for("scores.txt", None) == DEFAULT_FORMAT
    for command, offered in (("score", FORMATS), ("best", FORMATS), ("ray-score", RAY_FORMATS)):
        usage = CliRunner().invoke(main, [command, "--format", "x", "in.jpg"]).output
        assert all(f"'{name}'" in usage for name in offered), usage


@pytest.mark.parametrize("name", FORMATS)
def test_rows_read_back_as_written_and_appended(name: str, tmp_path: Path) -> None:
    entry = ROW_FORMATS[name]
    out = tmp_path / f"scores.{entry.suffixes[-1]}"
    expected = [row.values() for row in ROWS]
    # The file as `fiqa score` writes it: locked, one write per input.
    with open_output(str(out)) as stream:
        RowWriter(stream, name, write_header=True, columns=ALL_COLUMNS).write_input(ROWS[:2])
    if not entry.appends_rows:  # read back as written once, never appended to
        assert read_rows(out) == expected[:2]
        return
    assert prepare_resume(out, name, ALL_COLUMNS) == {"plain.jpg": 0.75}
    with open_output(str(out), append=True) as stream:
        writer = RowWriter(stream, name, write_header=False, columns=ALL_COLUMNS)
        for row in ROWS[2:]:
            writer.write_input([row])
    assert read_rows(out) == expected
    # The other columns come back as the format holds them (CSV: text); the reasons are text.
    read = read_rows(out, other_columns=True)
    assert all(tuple(row) == ALL_COLUMNS for row in read)
    assert [row["reasons"] for row in read] == [row.reasons for row in ROWS]
