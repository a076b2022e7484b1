"""A teacher's certainty ratio of each photo as a `fiqa score`-style CSV, for `fiqa evaluate`.

How good a quality label the teacher's CR is, before anything is trained on it: score held-out
photos with it (it needs their identities, so it is no quality tool, only a measurement) and
compare it with the baselines and the oracle. `--align crop` embeds fiqa's aligned crop as
`fiqa train --cr-teacher` does; `--align photo` lets dlib find (HOG detector, the face nearest
the centre), align and cut the face from the photo itself. Identities need 2 or more photos
(leave-one-out centres); the descriptors are centred on these photos' own mean.

    python tools/teacher_cr_scores.py runs/lfw-split/heldout --align crop --faces central \\
        --detector mtcnn --work runs/teacher-cr --out teacher_cr_crop.csv
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

from fiqa_cli.choices import LARGEST_FACE
from fiqa_cli.export.image_folder import AlignedCropCache, FaceImageFolder
from fiqa_cli.export.teacher import DlibTeacher
from fiqa_cli.export.teacher_targets import (
    TeacherEmbeddingCache,
    photo_key,
    teacher_certainty_ratios,
)
from fiqa_cli.runtime.decode import read_image
from fiqa_cli.runtime.image_files import identity_images


def crop_descriptors(
    root: Path, args: argparse.Namespace
) -> tuple[list[Path], list[int], np.ndarray]:
    crops = AlignedCropCache(args.work / "aligned-crops", args.detector, None, args.faces)
    folder = FaceImageFolder(root, crops, min_images_per_id=2)
    by_crop = {
        crops.crop_path(photo): photo for _, photos in identity_images(root) for photo in photos
    }
    paths = [crop for crop, _ in folder.samples]
    cache = TeacherEmbeddingCache(args.work / "teacher-embeddings", "dlib")
    descriptors = cache.descriptors(paths, [photo_key(p) for p in paths], 0)[:, 0]
    return [by_crop[p] for p in paths], [label for _, label in folder.samples], descriptors


def photo_descriptors(root: Path) -> tuple[list[Path], list[int], np.ndarray]:
    import dlib

    detector, teacher = dlib.get_frontal_face_detector(), DlibTeacher()
    photos, labels, images, boxes = [], [], [], []
    for label, (_, found) in enumerate(identity_images(root)):
        for photo in found:
            rgb = np.ascontiguousarray(read_image(photo)[:, :, ::-1])
            faces = detector(rgb, 1)
            if not faces:
                continue
            centre = np.array(rgb.shape[1::-1]) / 2
            face = min(faces, key=lambda f: np.linalg.norm([f.center().x, f.center().y] - centre))
            photos.append(photo)
            labels.append(label)
            images.append(rgb)
            boxes.append((face.left(), face.top(), face.right(), face.bottom()))
    print(f"dlib found a face in {len(photos)} photos", file=sys.stderr)
    keep = np.bincount(labels)[labels] >= 2
    descriptors = teacher.embed_faces(images, boxes)[keep]
    # Identities left with one photo drop out: number the rest without gaps.
    kept_labels = np.unique(np.array(labels)[keep], return_inverse=True)[1]
    kept_photos = [photo for photo, kept in zip(photos, keep, strict=True) if kept]
    return kept_photos, list(kept_labels), descriptors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="ROOT/IDENTITY/*.jpg")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--align", choices=("crop", "photo"), default="crop")
    parser.add_argument("--work", type=Path, default=Path("runs/teacher-cr"))
    parser.add_argument("--detector", default="mtcnn", help="for --align crop")
    parser.add_argument("--faces", default=LARGEST_FACE, help="for --align crop")
    args = parser.parse_args()

    if args.align == "crop":
        photos, labels, descriptors = crop_descriptors(args.root, args)
    else:
        photos, labels, descriptors = photo_descriptors(args.root)
    ratios = teacher_certainty_ratios(descriptors[:, None], np.array(labels), "paper")[:, 0]
    with args.out.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(
            ["path", "face", "quality", "status", "det_score", "x1", "y1", "x2", "y2", "message"]
        )
        for photo, ratio in zip(photos, ratios, strict=True):
            writer.writerow([photo, 0, repr(float(ratio)), "ok", "", "", "", "", "", ""])
    print(
        f"{len(photos)} photos: CR mean {ratios.mean():.4f} std {ratios.std():.4f}", file=sys.stderr
    )


if __name__ == "__main__":
    main()
