"""The EDC plot of `fiqa evaluate`: one panel per FMR, one step curve per method."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fiqa_cli.evaluation.baselines import BASELINE_NAMES
from fiqa_cli.evaluation.results import MethodResult
from fiqa_cli.runtime.safe_write import replacing


def plot_edc(
    path: Path,
    results: Sequence[MethodResult],
    max_discard: float,
    plot_max_discard: float,
    log_fnmr: bool,
) -> None:
    """Write the plot as PNG; the pAUC range is shaded."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fmrs = sorted({result.fmr for result in results}, reverse=True)
    figure, axes = plt.subplots(1, len(fmrs), figsize=(6.5 * len(fmrs), 5), squeeze=False)
    for ax, fmr in zip(axes[0], fmrs, strict=True):
        for result in (r for r in results if r.fmr == fmr):
            x, y = result.curve.discard_fractions, result.curve.fnmr
            # The step curve holds its last value to the plot's edge.
            x, y = np.append(x, max(plot_max_discard, x[-1])), np.append(y, y[-1])
            ax.plot(x, y, drawstyle="steps-post", label=result.method, **_line_style(result.method))
        ax.axvspan(
            0.0, max_discard, color="0.92", zorder=0, label=f"pAUC range (0-{max_discard:g})"
        )
        threshold = next(r.threshold for r in results if r.fmr == fmr)
        ax.set_title(f"EDC at FMR {fmr:g} (threshold {threshold:.3f})")
        ax.set_xlabel("fraction of samples discarded (lowest quality first)")
        ax.set_ylabel("FNMR")
        ax.set_xlim(0.0, plot_max_discard)
        # A log axis needs a positive value to show; an all-zero panel stays linear.
        if log_fnmr and any(r.curve.fnmr.max() > 0 for r in results if r.fmr == fmr):
            ax.set_yscale("log", nonpositive="mask")
        else:
            ax.set_ylim(bottom=0.0)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    figure.tight_layout()
    with replacing(path) as written:  # never through a link planted at `path`
        figure.savefig(written, dpi=120, format="png")
    plt.close(figure)


def _line_style(method: str) -> dict[str, object]:
    if method == "oracle":
        return {"color": "black", "linestyle": ":", "linewidth": 1.5}
    if method in BASELINE_NAMES:
        return {"linestyle": "--", "linewidth": 1.0}
    return {"linestyle": "-", "linewidth": 2.0}
