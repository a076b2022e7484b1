"""The spread of a CR teacher's targets on a sample of training photos, raw and centred.

A regression target that barely varies teaches the quality head nothing: check a teacher's
spread before training on it. Samples `--identities` identities (with 2 or more photos) of each
root, at most `--photos` photos each, aligns them as `fiqa train` does, embeds each photo and
`--variants` degraded variants with the teacher, and prints the CR's mean and standard deviation
with raw descriptors and with descriptors centred on the sample's mean. NNCCS runs over the
sample's identities only, fewer than a training run has, so the CR comes out a little higher.

    python tools/teacher_target_spread.py runs/v6/lfw-split/train runs/v6/celeba-split/train \\
        --faces central --detector mtcnn --work runs/teacher-spread
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np

from fiqa_cli.choices import LARGEST_FACE
from fiqa_cli.export.image_folder import AlignedCropCache
from fiqa_cli.export.multi_root import image_folders
from fiqa_cli.export.teacher_targets import (
    TeacherEmbeddingCache,
    photo_key,
    teacher_certainty_ratios,
)
from fiqa_cli.runtime.image_files import identity_images


def sample_root(root: Path, out: Path, identities: int, photos: int) -> Path:
    """OUT/IDENTITY/ folders of links to the first photos of a hash-ordered identity sample."""
    found = [(name, images) for name, images in identity_images(root) if len(images) >= 2]
    found.sort(key=lambda item: hashlib.sha256(item[0].encode()).hexdigest())
    for name, images in found[:identities]:
        (out / name).mkdir(parents=True, exist_ok=True)
        for image in sorted(images)[:photos]:
            link = out / name / image.name
            if not link.is_symlink():
                link.symlink_to(image.resolve())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("roots", type=Path, nargs="+", help="ROOT/IDENTITY/*.jpg training roots")
    parser.add_argument("--work", type=Path, default=Path("runs/teacher-spread"))
    parser.add_argument("--identities", type=int, default=40, help="per root")
    parser.add_argument("--photos", type=int, default=6, help="per identity, at most")
    parser.add_argument("--variants", type=int, default=1, help="degraded variants per photo")
    parser.add_argument("--teacher", default="dlib")
    parser.add_argument("--detector", default="mtcnn")
    parser.add_argument("--faces", default=LARGEST_FACE)
    args = parser.parse_args()

    samples = [
        sample_root(root, args.work / "sample" / str(index), args.identities, args.photos)
        for index, root in enumerate(args.roots)
    ]
    crops = AlignedCropCache(args.work / "aligned-crops", args.detector, None, args.faces)
    dataset = image_folders(samples, crops, min_images_per_id=2)
    paths = [crop for crop, _ in dataset.samples]
    labels = np.array([label for _, label in dataset.samples])
    cache = TeacherEmbeddingCache(args.work / "teacher-embeddings", args.teacher)
    descriptors = cache.descriptors(paths, [photo_key(p) for p in paths], args.variants)
    clean = descriptors[:, 0] / np.linalg.norm(descriptors[:, 0], axis=1, keepdims=True)
    impostor = (clean @ clean.T)[labels[:, None] != labels[None, :]]
    print(
        f"{len(paths)} photos of {dataset.num_classes} identities from {len(args.roots)} root(s); "
        f"raw impostor cosine mean {impostor.mean():.3f}"
    )
    print(f"{'descriptors':<12} {'variants':<9} {'CR mean':>8} {'CR std':>8}")
    for centre in (False, True):
        ratios = teacher_certainty_ratios(descriptors, labels, "paper", centre=centre)
        for name, part in (("clean", ratios[:, 0]), ("degraded", ratios[:, 1:])):
            if part.size:
                label = "centred" if centre else "raw"
                print(f"{label:<12} {name:<9} {part.mean():8.4f} {part.std():8.4f}")


if __name__ == "__main__":
    main()
