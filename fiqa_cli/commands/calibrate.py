"""`fiqa calibrate`: fit a quality model's `quality_100` scale on photos of known identities
and write the model again with the calibration in its metadata.

What the scale means is defined in `fiqa_cli.runtime.calibration`; how it is fitted, and how
its fit is measured on identities it was not fitted on, in `fiqa_cli.evaluation.calibration_fit`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from fiqa_cli.commands.options import (
    FiqaCommand,
    labelled_photo_options,
    model_option,
    roots_argument,
)
from fiqa_cli.errors import FiqaError

if TYPE_CHECKING:
    import numpy as np

    from fiqa_cli.evaluation.labelled_photos import PhotoOptions
    from fiqa_cli.runtime.quality_model import QualityModel

DEFAULT_FMR = 1e-3


@click.command(cls=FiqaCommand)
@roots_argument()
@model_option("ONNX quality model to calibrate (default: the embedded one).")
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="Where to write the calibrated model (may be --model itself).",
)
@click.option(
    "--fmr",
    type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True),
    default=DEFAULT_FMR,
    show_default=True,
    help="FMR of the decision threshold at which quality_100 counts false non-matches.",
)
@labelled_photo_options
def calibrate(
    roots: tuple[Path, ...],
    model: Path | None,
    out: Path,
    fmr: float,
    photo_options: PhotoOptions,
) -> None:
    """Calibrate a quality model's quality_100 on the photos under ROOT/IDENTITY/ (several
    ROOTs: their photos together, each root's identities its own people).

    quality_100 = -25 log10(expected FNMR at --fmr): 25 points are ten times fewer false
    non-matches (50: one comparison in 100 fails, 75: one in 1,000). The expected FNMR at
    each raw quality is a monotone fit of how often each photo's mated comparisons fail with
    --fr-model. Prints how well the fit holds on identities it was not fitted on.
    """
    from fiqa_cli.evaluation.calibration_fit import (
        CalibrationFitError,
        fit_calibration,
        held_out_fit,
        identity_folds,
        photo_failures,
    )
    from fiqa_cli.evaluation.labelled_photos import labelled_photos
    from fiqa_cli.runtime.build import build_quality_model
    from fiqa_cli.runtime.providers import select_providers

    # Loaded first: a bad --model is refused before minutes of alignment.
    providers = select_providers(photo_options.device, dict(photo_options.cuda_options))
    quality_model = build_quality_model(model, providers)
    source = quality_model.path
    photos = labelled_photos(roots, photo_options, pairs_file=None, max_fmr=fmr, progress=_progress)
    comparisons = photos.comparisons
    if not comparisons.non_mated.resolves(fmr):
        raise FiqaError(
            f"{comparisons.non_mated.count} non-mated comparisons cannot resolve FMR {fmr:g}: "
            "use more identities or a higher --fmr"
        )
    crops = list(photos.evaluation_set.crops)
    _progress(f"scoring {len(crops)} crops with {source.name}")
    qualities = _qualities(quality_model, crops)
    threshold = comparisons.non_mated.threshold(fmr)
    labels = photo_failures(comparisons, len(crops), threshold)
    identities = [sample.identity for sample in photos.evaluation_set.samples]
    try:
        bands = held_out_fit(qualities, labels, identity_folds(identities), fmr)
    except CalibrationFitError as error:  # too few photos in one half; the full fit may work
        _progress(f"no held-out fit: a half of the identities cannot be fitted alone ({error})")
        bands = []
    fit = {
        "threshold": threshold,
        "held_out_bands": bands,
        "dataset": " + ".join(root.name for root in roots),
    }
    calibration = fit_calibration(
        qualities, labels, fmr, recognition_model=photo_options.fr_model.name, fit=fit
    )
    _write_calibrated(
        source,
        out,
        calibration.to_json(),
        # The new file must load, calibration and all, before it replaces anything.
        check=lambda path: build_quality_model(path, photos.providers),
    )
    if bands:
        click.echo(_fit_table(bands))
    _progress(f"{calibration.describe()}; {len(calibration.qualities)} knots; wrote {out}")


def _qualities(quality_model: QualityModel, crops: list[np.ndarray]) -> np.ndarray:
    import numpy as np

    from fiqa_cli.runtime.build import default_batch_size
    from fiqa_cli.runtime.rows import QUALITY_DECIMALS

    batch_size = default_batch_size(quality_model)
    scores = quality_model.predict_batched(crops, batch_size).astype(np.float64)
    # Rounded as `fiqa score` writes it: the scale is fitted on the values it will be given.
    return np.round(scores, QUALITY_DECIMALS)


def _write_calibrated(
    source: Path, out: Path, calibration_json: str, check: Callable[[Path], object]
) -> None:
    """`source` with the calibration set, written to `out` through a temporary file beside it
    that `check` must accept first, so that a failed write never leaves half a model or a
    model that does not load (and `out` may be `source`, whose mode it keeps)."""
    from fiqa_cli.evaluation.onnx_metadata import OnnxFileError, with_metadata
    from fiqa_cli.model_contract import META_CALIBRATION
    from fiqa_cli.runtime.safe_write import replacing

    try:
        data = with_metadata(source.read_bytes(), {META_CALIBRATION: calibration_json})
    except OnnxFileError as error:
        raise FiqaError(f"{source}: not an ONNX file ({error})") from None
    with replacing(out) as written:
        written.write_bytes(data)
        check(written)


def _fit_table(bands: list[dict[str, object]]) -> str:
    """The held-out fit, one line per quality_100 band."""

    def rate(value: object) -> str:
        return "-" if value is None else f"{100 * float(value):.2f}%"

    lines = [
        "held-out fit (each half of the identities predicted by the other half's calibration)",
        f"{'quality_100':>11} {'photos':>7} {'comparisons':>11} {'predicted FNMR':>14} "
        f"{'observed FNMR':>13}",
    ]
    for band in bands:
        lines.append(
            f"{band['quality_100']:>11} {band['photos']:>7} {band['comparisons']:>11} "
            f"{rate(band['predicted_fnmr']):>14} {rate(band['observed_fnmr']):>13}"
        )
    return "\n".join(lines)


def _progress(message: str) -> None:
    click.echo(f"fiqa calibrate: {message}", err=True)
