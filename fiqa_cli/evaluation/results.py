"""EDC results of `fiqa evaluate`: one curve per method and FMR, and the table that sums them
up (on the terminal, as CSV, or as JSON with the curves)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fiqa_cli.evaluation.baselines import ORACLE, RANDOM
from fiqa_cli.evaluation.edc import Comparisons, EdcCurve, edc_curve
from fiqa_cli.runtime.safe_write import write_replacing


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


def format_table(table: list[dict[str, object]]) -> str:
    header = list(table[0])
    cells = [[_cell(row[column]) for column in header] for row in table]
    widths = [max(len(text) for text in column) for column in zip(header, *cells, strict=True)]
    lines = [header, *cells]
    return "\n".join(
        "  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def _cell(value: object) -> str:
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
