"""The table of row formats (`rows.ROW_FORMATS`): every format a command offers is an entry, and
each entry writes rows that read back as written, appended input by input where it says so."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from fiqa_cli.cli import main
from fiqa_cli.runtime.measure_kinds import MEASURE_NAMES, Measure
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
    OutputFormatError,
    Row,
    format_for,
    open_rows,
    output_format,
    prepare_resume,
    read_rows,
)

# The formats users have (`--format` of score and best, and the --out suffixes that select
# them; ray-score's --format), each of which must stay an entry of the table.
BY_SUFFIX = {"csv": "csv", "jsonl": "jsonl", "ndjson": "jsonl", "parquet": "parquet"}
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
    if not entry.appends_rows:  # written whole once, never appended to
        with open_rows(str(out), name, ALL_COLUMNS) as writer:
            for row in ROWS:
                writer.write_input([row])
        # Arrow text is UTF-8: a name that is not keeps its odd bytes as \xNN escapes.
        expected[3]["path"] = "caf\\xe9.jpg"
        assert read_rows(out) == expected
        assert [row["reasons"] for row in read_rows(out, other_columns=True)][-1] == ROWS[
            -1
        ].reasons
        return
    # The file as `fiqa score` writes it: locked, one write per input.
    with open_rows(str(out), name, ALL_COLUMNS) as writer:
        writer.write_input(ROWS[:2])
    assert prepare_resume(out, name, ALL_COLUMNS) == {"plain.jpg": 0.75}
    with open_rows(str(out), name, ALL_COLUMNS, append=True) as writer:
        for row in ROWS[2:]:
            writer.write_input([row])
    assert read_rows(out) == expected
    # The other columns come back as the format holds them (CSV: text); the reasons are text.
    read = read_rows(out, other_columns=True)
    assert all(tuple(row) == ALL_COLUMNS for row in read)
    assert [row["reasons"] for row in read] == [row.reasons for row in ROWS]


@pytest.mark.parametrize(
    ("out", "requested", "expected"),
    [
        ("scores.jsonl", None, "jsonl"),
        ("scores.NDJSON", "jsonl", "jsonl"),
        ("scores.parquet", None, "parquet"),
        ("scores.csv", "csv", "csv"),
        ("-", None, "csv"),
        ("-", "jsonl", "jsonl"),
        ("scores", None, "csv"),
        ("scores.txt", None, "csv"),  # an unknown suffix is CSV, as before
        ("scores.txt", "parquet", "parquet"),
    ],
)
def test_the_output_format_is_the_one_its_name_says(
    out: str, requested: str | None, expected: str
) -> None:
    assert output_format(out, requested) == expected


@pytest.mark.parametrize(
    ("out", "requested", "resume", "says"),
    [
        ("scores.json", None, False, ".jsonl"),  # a JSON array cannot be appended row by row
        ("scores.JSON", "jsonl", False, ".jsonl"),
        ("scores.jsonl", "csv", False, "contradicts"),
        ("scores.csv", "jsonl", False, "contradicts"),
        ("scores.parquet", "csv", False, "contradicts"),
        ("scores.csv", "parquet", False, "contradicts"),
        ("-", "parquet", False, "stdout"),
        ("scores.parquet", None, True, "--resume"),
    ],
)
def test_outputs_that_cannot_be_what_was_asked_are_refused(
    out: str, requested: str | None, resume: bool, says: str
) -> None:
    with pytest.raises(OutputFormatError, match=re.escape(says)):
        output_format(out, requested, resume=resume)


@pytest.mark.parametrize("command", ["score", "best"])
@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--out", "o.json"], ".jsonl"),
        (["--out", "o.jsonl", "--format", "csv"], "contradicts"),
        (["--format", "parquet"], "stdout"),
    ],
)
def test_commands_refuse_those_outputs_as_usage_errors(
    command: str, args: list[str], says: str, tmp_path: Path
) -> None:
    result = CliRunner().invoke(main, [command, *args, str(tmp_path)])
    assert result.exit_code == 2 and says in result.stderr, result.output
    assert not list(tmp_path.iterdir())  # refused before anything was written


def test_parquet_resume_is_a_usage_error(tmp_path: Path) -> None:
    args = ["score", "--resume", "--out", str(tmp_path / "o.parquet"), str(tmp_path)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and "--resume" in result.stderr


def test_parquet_without_pyarrow_names_the_extra(tmp_path: Path) -> None:
    """pyarrow hidden in a child process, as where the extra is not installed."""
    code = (
        "import sys; sys.modules['pyarrow'] = None\n"
        "from fiqa_cli.cli import main\n"
        f"main(['score', '--out', {str(tmp_path / 'o.parquet')!r}, {str(tmp_path)!r}])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 2 and "fiqa[parquet]" in done.stderr, done.stderr
    assert not (tmp_path / "o.parquet").exists()
    # A reader of score files (fiqa evaluate, report) says the same.
    (tmp_path / "o.parquet").write_bytes(b"PAR1")
    code = (
        "import sys; sys.modules['pyarrow'] = None\n"
        "from pathlib import Path\n"
        "from fiqa_cli.runtime.rows import ScoreFileError, read_rows\n"
        f"try: read_rows(Path({str(tmp_path / 'o.parquet')!r}))\n"
        "except ScoreFileError as error: print(error)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert "fiqa[parquet]" in done.stdout, done.stderr


def test_every_column_a_run_can_write_has_a_type() -> None:
    """Parquet's schema comes from COLUMN_TYPES: a column without an entry there (a new
    option's, say) would end a --out x.parquet run in a KeyError."""
    from fiqa_cli.runtime.rows import COLUMN_TYPES, row_columns

    every = row_columns(measures=True, landmarks=True, judged=True)
    assert [column for column in every if column not in COLUMN_TYPES] == []
