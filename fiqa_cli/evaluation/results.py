"""EDC results of `fiqa evaluate`: one curve per method and FMR, and the table that sums them
up (on the terminal, as CSV, or as JSON with the curves), with bootstrap intervals when asked."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fiqa_cli.evaluation.baselines import ORACLE, RANDOM
from fiqa_cli.evaluation.bootstrap import interval
from fiqa_cli.evaluation.edc import Comparisons, EdcCurve, edc_curve
from fiqa_cli.runtime.safe_write import write_replacing

# `--bootstrap`: the paired difference of each method against the reference, in its row.
VERSUS = "versus"
DIFFERENCE_COLUMNS = (
    VERSUS,
    "pauc_diff",
    "pauc_diff_low",
    "pauc_diff_high",
    "gap_diff",
    "gap_diff_low",
    "gap_diff_high",
)


@dataclass(frozen=True)
class MethodResult:
    method: str
    fmr: float
    threshold: float
    curve: EdcCurve


def edc_results(
    qualities: dict[str, np.ndarray], comparisons: Comparisons, fmrs: Sequence[float]
) -> list[MethodResult]:
    """Each method's EDC at the threshold of each FMR, grouped by FMR."""
    results = []
    for fmr in fmrs:
        threshold = comparisons.non_mated.threshold(fmr)
        for method, method_qualities in qualities.items():
            curve = edc_curve(
                method_qualities,
                comparisons.mated_a,
                comparisons.mated_b,
                comparisons.mated_scores,
                threshold,
            )
            results.append(MethodResult(method, fmr, threshold, curve))
    return results


def result_table(results: Sequence[MethodResult], max_discard: float) -> list[dict[str, object]]:
    """One row per method and FMR. `gap_removed` is the share of the pAUC gap between the random
    and the oracle rows of the same FMR that the method closes (random 0, oracle 1): unlike the
    pAUC itself, it compares across datasets and recognition models."""
    pauc = f"pauc@{max_discard:g}"
    table = [
        {
            "method": result.method,
            "fmr": result.fmr,
            "threshold": result.threshold,
            "fnmr@0": result.curve.fnmr_without_discard,
            pauc: result.curve.area(max_discard),
            "auc": result.curve.area(1.0),
        }
        for result in results
    ]
    by_method_fmr = {(row["method"], row["fmr"]): row[pauc] for row in table}
    for row in table:
        random = by_method_fmr.get((RANDOM, row["fmr"]))
        oracle = by_method_fmr.get((ORACLE, row["fmr"]))
        row["gap_removed"] = gap_removed(row[pauc], random, oracle)
    return table


def gap_removed(method: float, random: float | None, oracle: float | None) -> float:
    """(random - method) / (random - oracle); NaN without both references or without a gap."""
    if random is None or oracle is None or random == oracle:
        return float("nan")
    return (random - method) / (random - oracle)


def add_intervals(
    table: list[dict[str, object]],
    drawn: dict[tuple[str, float], np.ndarray],
    max_discard: float,
    reference: str | None,
) -> None:
    """Bootstrap intervals in each row of `result_table`'s `table`, from each (method, FMR)'s
    pAUC per draw (`bootstrap.bootstrap_paucs`): of the pAUC and of the share of the gap
    removed, and, with a `reference` method, of each other method's paired difference from
    it (method - reference: a negative pAUC difference and a positive gap difference favour
    the method). The reference's own row leaves the difference columns empty."""
    pauc = f"pauc@{max_discard:g}"
    gaps = {key: _drawn_gap(drawn, *key) for key in drawn}
    rows = {(row["method"], row["fmr"]): row for row in table}
    for row in table:
        key = (row["method"], row["fmr"])
        row[f"{pauc}_low"], row[f"{pauc}_high"] = interval(drawn[key])
        row["gap_removed_low"], row["gap_removed_high"] = interval(gaps[key])
        if reference is None:
            continue
        row.update(dict.fromkeys(DIFFERENCE_COLUMNS))
        if row["method"] == reference:
            continue
        reference_key = (reference, row["fmr"])
        reference_row = rows[reference_key]
        row[VERSUS] = reference
        row["pauc_diff"] = row[pauc] - reference_row[pauc]
        row["pauc_diff_low"], row["pauc_diff_high"] = interval(drawn[key] - drawn[reference_key])
        row["gap_diff"] = row["gap_removed"] - reference_row["gap_removed"]
        row["gap_diff_low"], row["gap_diff_high"] = interval(gaps[key] - gaps[reference_key])


def _drawn_gap(drawn: dict[tuple[str, float], np.ndarray], method: str, fmr: float) -> np.ndarray:
    """Each draw's share of the gap removed, against that draw's random and oracle."""
    values = drawn[(method, fmr)]
    random, oracle = drawn.get((RANDOM, fmr)), drawn.get((ORACLE, fmr))
    if random is None or oracle is None:
        return np.full(len(values), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(random != oracle, (random - values) / (random - oracle), np.nan)


def format_results(table: list[dict[str, object]]) -> str:
    """The table for a terminal; with paired differences (`add_intervals`), those in a second
    table of the rows that have one."""
    header = [column for column in table[0] if column not in DIFFERENCE_COLUMNS]
    text = format_table(table, header)
    compared = [row for row in table if row.get(VERSUS) is not None]
    if compared:
        columns = ["method", "fmr", *DIFFERENCE_COLUMNS[1:]]
        text += (
            f"\n\npaired differences, method - {compared[0][VERSUS]} (negative pauc_diff, "
            "positive gap_diff: the method is better; an interval that holds 0 decides nothing)"
            f"\n{format_table(compared, columns)}"
        )
    return text


def format_table(table: list[dict[str, object]], header: list[str] | None = None) -> str:
    header = header or list(table[0])
    cells = [[_cell(row[column]) for column in header] for row in table]
    widths = [max(len(text) for text in column) for column in zip(header, *cells, strict=True)]
    lines = [header, *cells]
    return "\n".join(
        "  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def _cell(value: object) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def write_results(
    out: Path, table: list[dict[str, object]], results: Sequence[MethodResult]
) -> None:
    """CSV: the table. JSON: the table rows, each with its curve's points. Written through
    `replacing`: never through a link planted at `out`."""
    if out.suffix.lower() == ".json":
        rows = [
            {
                **row,
                "curve": {
                    "discard_fraction": result.curve.discard_fractions.tolist(),
                    "fnmr": result.curve.fnmr.tolist(),
                    "remaining_mated": result.curve.remaining_mated.tolist(),
                },
            }
            for row, result in zip(table, results, strict=True)
        ]
        write_replacing(out, (json.dumps(rows, indent=1) + "\n").encode())
        return
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=list(table[0]))
    writer.writeheader()
    writer.writerows(table)
    write_replacing(out, text.getvalue().encode())
