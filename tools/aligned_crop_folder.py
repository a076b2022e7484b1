"""Align every photo of identity folders once and keep the crops compactly, for training
elsewhere (a GPU machine that should not detect faces again, `benchmarks/gpu.sh train`).

    python tools/aligned_crop_folder.py ../shared/data/lfw-devtrain/images ~/fiqa-runs/crops/lfw
    python tools/aligned_crop_folder.py ../shared/data/celeba-wild ~/fiqa-runs/crops/celeba

ROOT/IDENTITY/PHOTO.* becomes OUT/IDENTITY/PHOTO.jpg: the 112x112 ArcFace-aligned crop of the
face `--faces` picks (central by default, the labelled person in photos cut around their
subject), found by the same face path `fiqa score` uses (detector `auto` unless told), JPEG
quality 90 (about 4.5 KB a crop). `fiqa train` takes a 112x112 image as an aligned crop, so OUT
trains as it is. Photos without a usable face are listed on stderr and left out. A crop already
written is kept, so an interrupted run continues where it stopped.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2

from fiqa_cli.choices import AUTO_DETECTOR, CENTRAL_FACE
from fiqa_cli.runtime.build import build_detector
from fiqa_cli.runtime.decode import DecodeError, read_image
from fiqa_cli.runtime.faces import aligned_face
from fiqa_cli.runtime.image_files import identity_images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="ROOT/IDENTITY/*.jpg")
    parser.add_argument("out", type=Path, help="gets OUT/IDENTITY/*.jpg aligned crops")
    parser.add_argument("--detector", default=AUTO_DETECTOR)
    parser.add_argument("--faces", default=CENTRAL_FACE, choices=("central", "largest"))
    parser.add_argument("--jpeg-quality", type=int, default=90)
    args = parser.parse_args()

    detector = build_detector(args.detector)
    written = skipped = 0
    for identity, photos in identity_images(args.root):
        for photo in photos:
            target = args.out / identity / f"{photo.stem}.jpg"
            if target.is_file():
                written += 1
                continue
            try:
                found = aligned_face(read_image(photo), detector, args.faces)
            except DecodeError as error:
                found = str(error)
            if isinstance(found, str):
                print(f"{photo}: {found}", file=sys.stderr)
                skipped += 1
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            ok, encoded = cv2.imencode(
                ".jpg", found.crop, [cv2.IMWRITE_JPEG_QUALITY, args.jpeg_quality]
            )
            if not ok:
                sys.exit(f"cannot encode the crop of {photo}")
            partial = target.with_suffix(".partial")
            partial.write_bytes(encoded.tobytes())
            partial.replace(target)
            written += 1
    print(f"{written} crops in {args.out}, {skipped} photos without a usable face")


if __name__ == "__main__":
    main()
