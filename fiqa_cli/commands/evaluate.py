"""`fiqa evaluate`: how well quality scores predict recognition errors (EDC, pAUC, plots).

Samples are the images under ROOT/IDENTITY/ (or those named by an LFW pairs file). Each is
detected and aligned once; a face-recognition model embeds the crops; the EDC of every score
file, every built-in baseline and the oracle is computed on exactly those crops (see
`fiqa_cli.evaluation.edc` for the protocol and its tie rules).

How samples count:
- An image with no detected face (or that cannot be read) has no crop to compare, so it is left
  out of the evaluation altogether; the count is reported on stderr
  (`fiqa_cli.evaluation.samples`).
- A sample that a score file gives no usable quality (no row, or no `ok` row for the same face)
  gets the lowest quality, -inf, and all such samples are discarded together at the first
  level (`fiqa_cli.evaluation.score_join` says how rows are matched to faces).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from fiqa_cli.commands.options import FiqaCommand, labelled_photo_options, roots_argument
from fiqa_cli.errors import FiqaError

if TYPE_CHECKING:
    import numpy as np

    from fiqa_cli.evaluation.edc import Comparisons
    from fiqa_cli.evaluation.labelled_photos import LabelledPhotos, PhotoOptions
    from fiqa_cli.evaluation.samples import EvaluationSet
    from fiqa_cli.evaluation.score_join import ScoredFace

# 1e-2 beside the strict ones: ten times the false non-matches, far less noise.
DEFAULT_FMRS = (1e-2, 1e-3, 1e-4)


@click.command(cls=FiqaCommand)
@roots_argument()
@click.option(
    "--scores",
    "score_files",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    multiple=True,
    help="Score file written by `fiqa score` (CSV or JSONL); repeat for several methods.",
)
@click.option(
    "--name",
    "names",
    multiple=True,
    help="Method name for each --scores, in order (default: the file's stem).",
)
@click.option(
    "--pairs",
    "pairs_file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="LFW-style pairs file; default: all pairs of the images under ROOT/IDENTITY/.",
)
@click.option(
    "--fmr",
    "fmrs",
    type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True),
    multiple=True,
    help="Target FMR of the decision threshold; repeatable. [default: 1e-2, 1e-3 and 1e-4]",
)
@click.option(
    "--max-discard",
    type=click.FloatRange(0.0, 1.0, min_open=True),
    default=0.2,
    show_default=True,
    help="Upper discard fraction of the pAUC.",
)
@click.option(
    "--plot-max-discard",
    type=click.FloatRange(0.0, 1.0, min_open=True),
    default=0.8,
    show_default=True,
    help="Right end of the plot's discard axis.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the table as CSV, or as JSON with the curves (by suffix).",
)
@click.option("--plot", type=click.Path(path_type=Path, dir_okay=False), help="EDC plot (PNG).")
@click.option(
    "--log-fnmr", is_flag=True, help="Logarithmic FNMR axis in the plot (FNMR 0 is not drawn)."
)
@labelled_photo_options
@click.option(
    "--bootstrap",
    "draws",
    metavar="N",
    type=click.IntRange(min=100),
    help="95% intervals from N draws of identities (1000 is a good N): identities are drawn "
    "with replacement, each bringing all its photos and mated comparisons; every method sees "
    "the same draws. Adds each pAUC's and gap_removed's interval and, for every method but "
    "the first --scores, its paired difference from that first --scores with its interval "
    "(columns versus, pauc_diff, gap_diff and their _low/_high). Each draw holds the full "
    "set's threshold: it depends on the recognition model only, so it is the same for every "
    "method, and a refit moves a paired difference little. [default: off]",
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed of the random baseline and of the bootstrap's draws.",
)
def evaluate(
    roots: tuple[Path, ...],
    score_files: tuple[Path, ...],
    names: tuple[str, ...],
    pairs_file: Path | None,
    fmrs: tuple[float, ...],
    max_discard: float,
    plot_max_discard: float,
    out: Path | None,
    plot: Path | None,
    log_fnmr: bool,
    photo_options: PhotoOptions,
    draws: int | None,
    seed: int,
) -> None:
    """Error-versus-discard characteristic of quality scores on the faces under ROOT (several
    ROOTs: their photos together, each root's identities its own people).

    FNMR is measured at a threshold fixed on all non-mated comparisons at each --fmr, while the
    lowest-quality fraction of samples is discarded (a comparison's quality is the lower of its
    two samples'). Each --scores file is compared with built-in baselines (random, box size,
    detector confidence, sharpness, exposure, contrast) and with the oracle (each sample's mean
    mated similarity). The table reports FNMR at 0% discard, the pAUC up to --max-discard and
    the AUC over the whole discard range.

    With --bootstrap, a candidate beats another when the interval of their paired difference
    excludes 0: a single figure decides nothing.
    """
    # Imported here so that `fiqa evaluate --help` loads neither onnxruntime nor OpenCV.
    from fiqa_cli.evaluation.baselines import baseline_qualities
    from fiqa_cli.evaluation.labelled_photos import labelled_photos
    from fiqa_cli.evaluation.plot import plot_edc
    from fiqa_cli.evaluation.results import (
        edc_results,
        format_results,
        result_table,
        write_results,
    )
    from fiqa_cli.evaluation.score_join import read_scored_faces

    fmrs = tuple(sorted(set(fmrs or DEFAULT_FMRS), reverse=True))
    method_names = _method_names(score_files, names)
    # Read first: a bad score file is refused before minutes of alignment.
    scored_faces = {
        name: read_scored_faces(path) for name, path in zip(method_names, score_files, strict=True)
    }
    if pairs_file is not None and len(roots) > 1:
        raise click.UsageError("--pairs names the photos of a single ROOT")
    _check_scores_name_photos(scored_faces, roots)
    photos = labelled_photos(
        roots, photo_options, pairs_file=pairs_file, max_fmr=max(fmrs), progress=_progress
    )
    evaluation_set, comparisons = photos.evaluation_set, photos.comparisons
    _check_comparisons(comparisons, fmrs)
    qualities = {
        name: _joined_qualities(name, scored, evaluation_set)
        for name, scored in scored_faces.items()
    }
    qualities.update(baseline_qualities(evaluation_set, comparisons, seed))
    results = edc_results(qualities, comparisons, fmrs)
    table = result_table(results, max_discard)
    if draws is not None:
        _add_bootstrap(table, qualities, photos, fmrs, max_discard, draws, seed, method_names)
    click.echo(format_results(table))
    if out is not None:
        write_results(out, table, results)
    if plot is not None:
        plot_edc(plot, results, max_discard, plot_max_discard, log_fnmr)


def _check_scores_name_photos(
    scored_faces: dict[str, dict[str, list[ScoredFace]]], roots: Sequence[Path]
) -> None:
    """Joined before minutes of alignment: a score file none of whose rows is a photo under
    the ROOTs (scored elsewhere, or from another folder) is refused at once."""
    from fiqa_cli.evaluation.score_join import photos_scored
    from fiqa_cli.runtime.image_files import identity_images

    photos = [photo for root in roots for _, images in identity_images(root) for photo in images]
    for method, scored in scored_faces.items():
        if not photos_scored(scored, photos):
            raise FiqaError(
                f"{method}: no row of its scores file is a photo under "
                f"{', '.join(map(str, roots))} ({len(photos)} photos; paths are joined after "
                "resolving them against the current folder)"
            )


def _method_names(score_files: Sequence[Path], names: Sequence[str]) -> list[str]:
    from fiqa_cli.evaluation.baselines import BASELINE_NAMES

    if len(names) > len(score_files):
        raise click.UsageError("more --name than --scores")
    method_names = list(names) + [path.stem for path in score_files[len(names) :]]
    taken = set(BASELINE_NAMES)
    for name in method_names:
        if name in taken:
            raise click.UsageError(f"method name {name!r} is used twice; pass --name")
        taken.add(name)
    return method_names


def _add_bootstrap(
    table: list[dict[str, object]],
    qualities: dict[str, np.ndarray],
    photos: LabelledPhotos,
    fmrs: Sequence[float],
    max_discard: float,
    draws: int,
    seed: int,
    method_names: Sequence[str],
) -> None:
    import time

    import numpy as np

    from fiqa_cli.evaluation.bootstrap import bootstrap_paucs
    from fiqa_cli.evaluation.results import add_intervals

    identities = [sample.identity for sample in photos.evaluation_set.samples]
    started = time.monotonic()
    # A stream of its own: the random baseline's qualities stay those of --seed alone.
    rng = np.random.default_rng([seed, 1])
    drawn = bootstrap_paucs(
        qualities, photos.comparisons, identities, fmrs, max_discard, draws, rng
    )
    seconds = time.monotonic() - started
    _progress(
        f"bootstrap: {draws} draws of {len(set(identities))} identities in {seconds:.1f} s "
        f"({draws / max(seconds, 1e-9):.0f} draws/s)"
    )
    add_intervals(table, drawn, max_discard, method_names[0] if method_names else None)


def _progress(message: str) -> None:
    click.echo(f"fiqa evaluate: {message}", err=True)


def _check_comparisons(comparisons: Comparisons, fmrs: Sequence[float]) -> None:
    non_mated_count = comparisons.non_mated.count
    for fmr in fmrs:
        if not comparisons.non_mated.resolves(fmr):
            _progress(
                f"warning: {non_mated_count} non-mated comparisons cannot resolve "
                f"FMR {fmr:g}; its threshold is the highest non-mated score (FMR 0)"
            )


def _joined_qualities(
    method: str, scored: dict[str, list[ScoredFace]], evaluation_set: EvaluationSet
) -> np.ndarray:
    import numpy as np

    from fiqa_cli.evaluation.score_join import joined_qualities

    qualities = joined_qualities(scored, evaluation_set)
    missing = int(np.isneginf(qualities).sum())
    if missing == len(qualities):  # its row would look like a method that ranks at random
        raise FiqaError(
            f"{method}: no row of its scores file matches any of the {missing} evaluated faces "
            "(paths are joined after resolving them against the current folder)"
        )
    if missing:
        _progress(f"{method}: {missing} of {len(qualities)} faces have no quality (ranked lowest)")
    return qualities
