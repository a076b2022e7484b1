"""What `fiqa evaluate` and `fiqa calibrate` measure against: photos of known identities under
ROOT/IDENTITY/, detected and aligned once, embedded by a recognition model and compared.

`PhotoOptions` holds the settings, which both commands take as the same options
(`fiqa_cli.commands.options.labelled_photo_options`). The models are built through
`fiqa_cli.runtime.build` like every command's, and OpenCV and onnxruntime are imported only
when the photos are read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from fiqa_cli.choices import AUTO_DETECTOR, FR_MEAN, FR_STD, LARGEST_FACE
from fiqa_cli.errors import FiqaError

if TYPE_CHECKING:
    import numpy as np

    from fiqa_cli.evaluation.edc import Comparisons
    from fiqa_cli.evaluation.samples import EvaluationSet
    from fiqa_cli.runtime.providers import Providers


@dataclass(frozen=True)
class PhotoOptions:
    """How the labelled photos are found, detected, aligned and embedded."""

    fr_model: Path
    fr_mean: float = FR_MEAN
    fr_std: float = FR_STD
    detector: str = AUTO_DETECTOR
    detector_model: Path | None = None
    faces: str = LARGEST_FACE
    device: str = "auto"
    cuda_options: Mapping[str, str] = field(default_factory=dict)
    min_images: int = 2
    limit_ids: int | None = None
    max_images_per_id: int | None = None


@dataclass(frozen=True)
class LabelledPhotos:
    """The photos that yielded a crop, and their comparisons by the recognition model."""

    evaluation_set: EvaluationSet
    comparisons: Comparisons
    providers: Providers


def labelled_photos(
    roots: Sequence[Path],
    options: PhotoOptions,
    *,
    pairs_file: Path | None,
    max_fmr: float,
    progress: Callable[[str], None],
) -> LabelledPhotos:
    """Read, detect, align, embed and compare the photos under `roots` (all pairs, or
    `pairs_file`'s, which names photos of a single root)."""
    from fiqa_cli.evaluation.recognition import FaceRecognizer
    from fiqa_cli.evaluation.samples import compare, prepare_faces
    from fiqa_cli.runtime.build import build_detector
    from fiqa_cli.runtime.providers import select_providers

    providers = select_providers(options.device, dict(options.cuda_options))
    face_detector = build_detector(options.detector, options.detector_model, providers)
    recognizer = FaceRecognizer(
        options.fr_model, mean=options.fr_mean, std=options.fr_std, providers=providers
    )
    samples, listed_pairs = _samples(roots, pairs_file, options, progress)
    evaluation_set, positions = prepare_faces(samples, face_detector, progress, options.faces)
    progress(f"embedding {len(evaluation_set.samples)} crops with {options.fr_model.name}")
    embeddings = recognizer.embed(evaluation_set.crops)
    comparisons = compare(embeddings, evaluation_set, listed_pairs, positions, max_fmr, progress)
    mated_count, non_mated_count = len(comparisons.mated_scores), comparisons.non_mated.count
    progress(f"{mated_count} mated, {non_mated_count} non-mated comparisons")
    if not mated_count or not non_mated_count:
        raise FiqaError("an error rate needs both mated and non-mated comparisons")
    return LabelledPhotos(evaluation_set, comparisons, providers)


def _samples(
    roots: Sequence[Path],
    pairs_file: Path | None,
    options: PhotoOptions,
    progress: Callable[[str], None],
) -> tuple[list, np.ndarray | None]:
    """The samples, and the listed pairs (None: all pairs of the samples)."""
    from fiqa_cli.evaluation.lfw_pairs import read_lfw_pairs
    from fiqa_cli.evaluation.samples import pair_samples, root_samples

    if pairs_file is None:
        samples = root_samples(
            roots, options.min_images, options.limit_ids, options.max_images_per_id
        )
        listed_pairs = None
    else:
        (root,) = roots
        samples, listed_pairs = pair_samples(read_lfw_pairs(pairs_file, root))
    if not samples:
        raise FiqaError(f"no samples found under {', '.join(map(str, roots))}")
    progress(f"{len(samples)} images of {len({s.identity for s in samples})} identities")
    return samples, listed_pairs
