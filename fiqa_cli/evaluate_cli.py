"""`fiqa evaluate`: how well quality scores predict recognition errors (EDC, pAUC, plots).

Samples are the images under ROOT/IDENTITY/ (or those named by an LFW pairs file). Each is
detected and aligned once; a face-recognition model embeds the crops; the EDC of every score
file, every built-in baseline and the oracle is computed on exactly those crops (see
`fiqa_cli.edc` for the protocol and its tie rules).

How samples count:
- An image with no detected face (or that cannot be read) has no crop to compare, so it is left
  out of the evaluation altogether; the count is reported on stderr.
- A sample that a score file gives no usable quality (no row, or no `ok` row for the same face)
  gets the lowest quality, -inf: a quality tool that cannot score an image would reject it
  first, and all such samples are discarded together at the first level.
- Score rows are joined by path (relative paths resolve against the current directory, as
  `fiqa score` writes them as given) and, among an image's `ok` rows, by the detection box that
  overlaps the evaluated face best.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click
import numpy as np

from fiqa_cli.edc import Comparisons, EdcCurve
from fiqa_cli.inputs import IMAGE_SUFFIXES
from fiqa_cli.providers import DEVICES, DeviceError, select_providers
from fiqa_cli.recognition import DEFAULT_MEAN, DEFAULT_STD
from fiqa_cli.rows import OK

if TYPE_CHECKING:
    from fiqa_cli.detect import Detector

DEFAULT_FMRS = (1e-3, 1e-4)
# A score row belongs to the evaluated face only if their boxes overlap at least this much;
# detectors differ in box conventions, so this is lenient.
_MIN_BOX_IOU = 0.3
_PROGRESS_EVERY = 200
_LFW_IMAGE_NAME = "{name}_{index:04d}.jpg"


@dataclass(frozen=True)
class Sample:
    path: Path
    identity: str


@dataclass(frozen=True)
class EvaluationSet:
    """The samples that yielded a crop, with what each baseline needs."""

    samples: list[Sample]
    crops: np.ndarray  # N x H x W x 3 BGR uint8
    bboxes: np.ndarray | None  # N x 4, None when the inputs are crops already
    det_scores: np.ndarray | None


@dataclass(frozen=True)
class MethodResult:
    method: str
    fmr: float
    threshold: float
    curve: EdcCurve


@click.command()
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
    default=DEFAULT_MEAN,
    show_default=True,
    help="FR input normalisation: (RGB pixel - mean) / std.",
)
@click.option("--fr-std", type=float, default=DEFAULT_STD, show_default=True)
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
@click.option(
    "--detector",
    type=click.Choice(("auto", "scrfd", "mtcnn", "none")),
    default="auto",
    show_default=True,
    help="auto: SCRFD if a local model exists, else MTCNN; none: images are aligned crops.",
)
@click.option(
    "--detector-model",
    type=click.Path(path_type=Path, dir_okay=False),
    help="SCRFD ONNX file (default: searched in insightface's model root).",
)
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True)
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
    device: str,
    min_images: int,
    limit_ids: int | None,
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
    from fiqa_cli.detect import DetectorError, create_detector
    from fiqa_cli.recognition import FaceRecognizer

    fmrs = tuple(sorted(set(fmrs or DEFAULT_FMRS), reverse=True))
    method_names = _method_names(score_files, names)
    try:
        providers = select_providers(device)
        face_detector = (
            None if detector == "none" else create_detector(detector, detector_model, providers)
        )
        recognizer = FaceRecognizer(fr_model, mean=fr_mean, std=fr_std, providers=providers)
    except (DeviceError, DetectorError, ValueError) as error:
        raise click.ClickException(str(error)) from None

    if pairs_file is None:
        samples = identity_samples(root, min_images, limit_ids)
        listed_pairs = None
    else:
        samples, listed_pairs = read_pairs_file(pairs_file, root)
    if not samples:
        raise click.ClickException(f"no samples found under {root}")
    _progress(f"{len(samples)} images of {len({s.identity for s in samples})} identities")

    evaluation_set, positions = prepare_faces(samples, face_detector)
    _progress(f"embedding {len(evaluation_set.samples)} crops with {fr_model.name}")
    embeddings = recognizer.embed(evaluation_set.crops)
    comparisons = _compare(embeddings, evaluation_set, listed_pairs, positions, max(fmrs))
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

    qualities = {
        name: joined_qualities(read_score_file(path), evaluation_set, name)
        for name, path in zip(method_names, score_files, strict=True)
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


# Samples -------------------------------------------------------------------------------


def identity_samples(root: Path, min_images: int, limit_ids: int | None) -> list[Sample]:
    """Images of ROOT/IDENTITY/ for identities with at least `min_images`, in name order."""
    samples = []
    identities = 0
    for folder in sorted(path for path in root.iterdir() if path.is_dir()):
        images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if len(images) < min_images:
            continue
        samples.extend(Sample(path, folder.name) for path in images)
        identities += 1
        if identities == limit_ids:
            break
    return samples


def read_pairs_file(pairs_file: Path, root: Path) -> tuple[list[Sample], np.ndarray]:
    """Samples named by an LFW pairs file, and its pairs as rows (a, b, is_mated).

    After the header line, `NAME i j` is a mated pair and `NAME1 i NAME2 j` a non-mated one;
    image i of NAME is ROOT/NAME/NAME_000i.jpg.
    """
    index: dict[Path, int] = {}
    samples: list[Sample] = []

    def sample_index(name: str, number: str) -> int:
        path = root / name / _LFW_IMAGE_NAME.format(name=name, index=int(number))
        if path not in index:
            index[path] = len(samples)
            samples.append(Sample(path, name))
        return index[path]

    pairs = []
    lines = pairs_file.read_text(encoding="utf-8").splitlines()[1:]
    for number, line in enumerate(lines, start=2):
        fields = line.split()
        try:
            if len(fields) == 3:
                name, first, second = fields
                pairs.append((sample_index(name, first), sample_index(name, second), 1))
            elif len(fields) == 4:
                name, first, other, second = fields
                pairs.append((sample_index(name, first), sample_index(other, second), 0))
            elif fields:
                raise ValueError
        except ValueError:
            raise click.ClickException(
                f"{pairs_file}:{number}: expected `NAME i j` or `NAME1 i NAME2 j`"
            ) from None
    return samples, np.array(pairs, dtype=np.int64).reshape(-1, 3)


# Crops -------------------------------------------------------------------------------------


def prepare_faces(
    samples: list[Sample], detector: Detector | None
) -> tuple[EvaluationSet, np.ndarray]:
    """Read, detect and align every sample; the largest detected face is the sample's face.

    With no detector the images are taken to be aligned crops already. Returns the usable
    samples and, for every given sample, its index among them (-1 when left out).
    """
    from fiqa_cli.align import align_face
    from fiqa_cli.decode import DecodeError, read_image

    positions = np.full(len(samples), -1, dtype=np.int64)
    crops, faces, skipped = [], [], []
    for position, sample in enumerate(samples):
        if position and position % _PROGRESS_EVERY == 0:
            _progress(f"aligned {position}/{len(samples)} images")
        try:
            image = read_image(sample.path)
        except DecodeError as error:
            skipped.append(f"{sample.path}: {error}")
            continue
        if detector is None:
            crops.append(image)
        else:
            detected = detector.detect(image)
            if not detected:
                skipped.append(f"{sample.path}: no face detected")
                continue
            crops.append(align_face(image, detected[0].landmarks))
            faces.append(detected[0])
        positions[position] = len(crops) - 1
    for reason in skipped:
        _progress(f"left out {reason}")
    if not crops:
        raise click.ClickException("no usable face in any sample")
    if len({crop.shape for crop in crops}) > 1:
        raise click.ClickException("--detector none needs images of one size (aligned crops)")
    evaluation_set = EvaluationSet(
        [sample for sample, position in zip(samples, positions, strict=True) if position >= 0],
        np.stack(crops),
        np.array([face.bbox for face in faces]).reshape(-1, 4) if detector else None,
        np.array([face.score for face in faces]) if detector else None,
    )
    return evaluation_set, positions


def _compare(
    embeddings: np.ndarray,
    evaluation_set: EvaluationSet,
    listed_pairs: np.ndarray | None,
    positions: np.ndarray,
    max_fmr: float,
) -> Comparisons:
    from fiqa_cli.edc import all_pairs_comparisons, pair_comparisons

    if listed_pairs is None:
        labels = np.array([sample.identity for sample in evaluation_set.samples])
        return all_pairs_comparisons(embeddings, labels, max_fmr)
    renumbered = positions[listed_pairs[:, :2]]
    usable = (renumbered >= 0).all(axis=1)
    if not usable.all():
        _progress(f"left out {int((~usable).sum())} pairs with a left-out image")
    mated = listed_pairs[:, 2] == 1
    return pair_comparisons(embeddings, renumbered[usable & mated], renumbered[usable & ~mated])


# Qualities -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoredFace:
    face: int
    quality: float
    bbox: np.ndarray | None


def read_score_file(path: Path) -> dict[str, list[ScoredFace]]:
    """The `ok` rows of a `fiqa score` CSV or JSONL file by resolved image path, face 0 first."""
    text = path.read_text(encoding="utf-8", errors="surrogateescape")
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        records = [json.loads(line) for line in text.splitlines() if line.strip()]
    else:
        records = list(csv.DictReader(text.splitlines()))
    faces: dict[str, list[ScoredFace]] = {}
    for number, record in enumerate(records, start=1):
        try:
            if record["status"] != OK:
                continue
            bbox = [record.get(key) for key in ("x1", "y1", "x2", "y2")]
            scored = ScoredFace(
                int(record.get("face") or 0),
                float(record["quality"]),
                None if None in bbox or "" in bbox else np.array(bbox, dtype=np.float64),
            )
        except (KeyError, TypeError, ValueError):
            raise click.ClickException(f"{path}: record {number} is not a fiqa score row") from None
        faces.setdefault(_path_key(record["path"]), []).append(scored)
    for scored_faces in faces.values():
        scored_faces.sort(key=lambda scored: scored.face)
    return faces


def _path_key(path: str | Path) -> str:
    return str(Path(path).resolve())


def joined_qualities(
    scored: dict[str, list[ScoredFace]], evaluation_set: EvaluationSet, method: str
) -> np.ndarray:
    """The quality of each evaluated face in `scored`, -inf where it has none."""
    bboxes = evaluation_set.bboxes
    qualities = np.array(
        [
            _matching_quality(
                scored.get(_path_key(sample.path), []), None if bboxes is None else bboxes[i]
            )
            for i, sample in enumerate(evaluation_set.samples)
        ]
    )
    missing = int(np.isneginf(qualities).sum())
    if missing:
        _progress(f"{method}: {missing} of {len(qualities)} faces have no quality (ranked lowest)")
    return qualities


def _matching_quality(faces: list[ScoredFace], bbox: np.ndarray | None) -> float:
    if not faces:
        return -math.inf
    boxed = [face for face in faces if face.bbox is not None]
    if bbox is None or not boxed:  # crops on one side: one face per image
        return faces[0].quality
    overlaps = [_iou(face.bbox, bbox) for face in boxed]
    best = int(np.argmax(overlaps))
    return boxed[best].quality if overlaps[best] >= _MIN_BOX_IOU else -math.inf


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    width, height = np.clip(np.minimum(a[2:], b[2:]) - np.maximum(a[:2], b[:2]), 0.0, None)
    intersection = width * height
    union = np.prod(a[2:] - a[:2]) + np.prod(b[2:] - b[:2]) - intersection
    return float(intersection / union) if union > 0 else 0.0


BASELINE_NAMES = (
    "random",
    "box-size",
    "detector-confidence",
    "sharpness",
    "exposure",
    "contrast",
    "oracle",
)


def baseline_qualities(
    evaluation_set: EvaluationSet, comparisons: Comparisons, seed: int
) -> dict[str, np.ndarray]:
    """Built-in baselines on the evaluated crops; box and detector ones need detections."""
    from fiqa_cli import baselines

    crops = evaluation_set.crops
    qualities = {"random": baselines.random_quality(len(crops), seed)}
    if evaluation_set.bboxes is not None:
        qualities["box-size"] = baselines.box_size(evaluation_set.bboxes)
        qualities["detector-confidence"] = evaluation_set.det_scores
    qualities["sharpness"] = baselines.sharpness(crops)
    qualities["exposure"] = baselines.exposure(crops)
    qualities["contrast"] = baselines.contrast(crops)
    qualities["oracle"] = baselines.oracle_quality(
        len(crops), comparisons.mated_a, comparisons.mated_b, comparisons.mated_scores
    )
    return qualities


def edc_results(
    qualities: dict[str, np.ndarray], comparisons: Comparisons, fmrs: Sequence[float]
) -> list[MethodResult]:
    from fiqa_cli.edc import edc_curve

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


# Output ------------------------------------------------------------------------------------


def result_table(results: Sequence[MethodResult], max_discard: float) -> list[dict[str, object]]:
    return [
        {
            "method": result.method,
            "fmr": result.fmr,
            "threshold": result.threshold,
            "fnmr@0": result.curve.fnmr_without_discard,
            f"pauc@{max_discard:g}": result.curve.area(max_discard),
            "auc": result.curve.area(1.0),
        }
        for result in results
    ]


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
    """CSV: the table. JSON: the table rows, each with its curve's points."""
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
        out.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
        return
    with out.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)


def plot_edc(
    path: Path,
    results: Sequence[MethodResult],
    max_discard: float,
    plot_max_discard: float,
    log_fnmr: bool,
) -> None:
    """One panel per FMR, one step curve per method; the pAUC range is shaded."""
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
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _line_style(method: str) -> dict[str, object]:
    if method == "oracle":
        return {"color": "black", "linestyle": ":", "linewidth": 1.5}
    if method in BASELINE_NAMES:
        return {"linestyle": "--", "linewidth": 1.0}
    return {"linestyle": "-", "linewidth": 2.0}
