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

from fiqa_cli.choices import FR_MEAN, FR_STD
from fiqa_cli.commands.options import (
    FiqaCommand,
    detector_model_option,
    detector_option,
    device_option,
    faces_option,
)
from fiqa_cli.errors import FiqaError

if TYPE_CHECKING:
    import numpy as np

    from fiqa_cli.evaluation.edc import Comparisons
    from fiqa_cli.evaluation.recognition import FaceRecognizer
    from fiqa_cli.evaluation.samples import EvaluationSet, Sample
    from fiqa_cli.evaluation.score_join import ScoredFace
    from fiqa_cli.runtime.detect import Detector

DEFAULT_FMRS = (1e-3, 1e-4)


@click.command(cls=FiqaCommand)
@click.argument("root", type=click.Path(path_type=Path, file_okay=False, exists=True))
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
    "--fr-model",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    required=True,
    help="ArcFace-style face-recognition ONNX model that produces the comparison scores.",
)
@click.option(
    "--fr-mean",
    type=float,
    default=FR_MEAN,
    show_default=True,
    help="FR input normalisation: (RGB pixel - mean) / std.",
)
@click.option("--fr-std", type=float, default=FR_STD, show_default=True)
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
    help="Target FMR of the decision threshold; repeatable. [default: 1e-3 and 1e-4]",
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
@detector_option()
@detector_model_option()
@faces_option(allow_all=False)
@device_option()
@click.option(
    "--min-images",
    type=click.IntRange(min=2),
    default=2,
    show_default=True,
    help="Identities with fewer images are skipped (without --pairs).",
)
@click.option(
    "--limit-ids",
    type=click.IntRange(min=2),
    help="Use only the first N identities in name order (without --pairs).",
)
@click.option(
    "--max-images-per-id",
    type=click.IntRange(min=2),
    help="Use only the first N images of each identity in name order (without --pairs): "
    "mated pairs grow with the square of an identity's images, so one identity with hundreds "
    "(LFW's George W Bush: 530) otherwise holds most of them.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random baseline.")
def evaluate(
    root: Path,
    score_files: tuple[Path, ...],
    names: tuple[str, ...],
    fr_model: Path,
    fr_mean: float,
    fr_std: float,
    pairs_file: Path | None,
    fmrs: tuple[float, ...],
    max_discard: float,
    plot_max_discard: float,
    out: Path | None,
    plot: Path | None,
    log_fnmr: bool,
    detector: str,
    detector_model: Path | None,
    faces: str,
    device: str,
    min_images: int,
    limit_ids: int | None,
    max_images_per_id: int | None,
    seed: int,
) -> None:
    """Error-versus-discard characteristic of quality scores on the faces under ROOT.

    FNMR is measured at a threshold fixed on all non-mated comparisons at each --fmr, while the
    lowest-quality fraction of samples is discarded (a comparison's quality is the lower of its
    two samples'). Each --scores file is compared with built-in baselines (random, box size,
    detector confidence, sharpness, exposure, contrast) and with the oracle (each sample's mean
    mated similarity). The table reports FNMR at 0% discard, the pAUC up to --max-discard and
    the AUC over the whole discard range.
    """
    # Imported here so that `fiqa evaluate --help` loads neither onnxruntime nor OpenCV.
    from fiqa_cli.evaluation.baselines import baseline_qualities
    from fiqa_cli.evaluation.plot import plot_edc
    from fiqa_cli.evaluation.results import edc_results, format_table, result_table, write_results
    from fiqa_cli.evaluation.samples import compare, prepare_faces
    from fiqa_cli.evaluation.score_join import read_scored_faces

    fmrs = tuple(sorted(set(fmrs or DEFAULT_FMRS), reverse=True))
    method_names = _method_names(score_files, names)
    face_detector, recognizer = _instruments(
        device, detector, detector_model, fr_model, fr_mean, fr_std
    )
    samples, listed_pairs = _samples(root, pairs_file, min_images, limit_ids, max_images_per_id)
    evaluation_set, positions = prepare_faces(samples, face_detector, _progress, faces)
    scored_faces = {
        name: read_scored_faces(path) for name, path in zip(method_names, score_files, strict=True)
    }

    _progress(f"embedding {len(evaluation_set.samples)} crops with {fr_model.name}")
    embeddings = recognizer.embed(evaluation_set.crops)
    comparisons = compare(embeddings, evaluation_set, listed_pairs, positions, max(fmrs), _progress)
    _check_comparisons(comparisons, fmrs)
    qualities = {
        name: _joined_qualities(name, scored, evaluation_set)
        for name, scored in scored_faces.items()
    }
    qualities.update(baseline_qualities(evaluation_set, comparisons, seed))
    results = edc_results(qualities, comparisons, fmrs)
    table = result_table(results, max_discard)
    click.echo(format_table(table))
    if out is not None:
        write_results(out, table, results)
    if plot is not None:
        plot_edc(plot, results, max_discard, plot_max_discard, log_fnmr)


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


def _progress(message: str) -> None:
    click.echo(f"fiqa evaluate: {message}", err=True)


def _instruments(
    device: str,
    detector: str,
    detector_model: Path | None,
    fr_model: Path,
    fr_mean: float,
    fr_std: float,
) -> tuple[Detector | None, FaceRecognizer]:
    from fiqa_cli.evaluation.recognition import FaceRecognizer
    from fiqa_cli.runtime.build import build_detector
    from fiqa_cli.runtime.providers import select_providers

    providers = select_providers(device)
    face_detector = build_detector(detector, detector_model, providers)
    recognizer = FaceRecognizer(fr_model, mean=fr_mean, std=fr_std, providers=providers)
    return face_detector, recognizer


def _samples(
    root: Path,
    pairs_file: Path | None,
    min_images: int,
    limit_ids: int | None,
    max_images: int | None,
) -> tuple[list[Sample], np.ndarray | None]:
    """The samples, and the listed pairs (None: all pairs of the samples)."""
    from fiqa_cli.evaluation.lfw_pairs import read_lfw_pairs
    from fiqa_cli.evaluation.samples import identity_samples, pair_samples

    if pairs_file is None:
        samples = identity_samples(root, min_images, limit_ids, max_images)
        listed_pairs = None
    else:
        samples, listed_pairs = pair_samples(read_lfw_pairs(pairs_file, root))
    if not samples:
        raise click.ClickException(f"no samples found under {root}")
    _progress(f"{len(samples)} images of {len({s.identity for s in samples})} identities")
    return samples, listed_pairs


def _check_comparisons(comparisons: Comparisons, fmrs: Sequence[float]) -> None:
    mated_count, non_mated_count = len(comparisons.mated_scores), comparisons.non_mated.count
    _progress(f"{mated_count} mated, {non_mated_count} non-mated comparisons")
    if not mated_count or not non_mated_count:
        raise click.ClickException("an EDC needs both mated and non-mated comparisons")
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
