"""Small faces in large photos (issue 32): what the tiled second pass finds and what it costs.

For YuNet + O-Net (the default path) and MTCNN, per photo kind: faces found and detection
milliseconds per photo (median of `--repeats`), against the same detector with the second pass
switched off. Kinds: an LFW photo (250x250, no shrinking), a booth close-up of 24 MP (one large
face), and event photos of 12 and 24 MP with four LFW photos pasted in, faces about 85 px wide.

    python benchmarks/small_faces.py [--shared PATH] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import cv2
import numpy as np
from common import add_shared_argument, lfw_photos, print_table

from fiqa_cli.runtime import detect
from fiqa_cli.runtime.decode import read_image

CORNERS = [(0.5, 0.5), (0.13, 0.15), (0.83, 0.75), (0.25, 0.87)]


def event_photo(photos: list, width: int, height: int) -> np.ndarray:
    blobs = np.random.default_rng(0).integers(40, 200, (40, 60, 3), dtype=np.uint8)
    photo = cv2.resize(blobs, (width, height), interpolation=cv2.INTER_CUBIC)
    for source, (fx, fy) in zip(photos, CORNERS, strict=False):
        x, y = int(fx * (width - 200)), int(fy * (height - 200))
        photo[y : y + 200, x : x + 200] = cv2.resize(read_image(source), (200, 200))
    return photo


def timed(detector, image: np.ndarray, repeats: int) -> tuple[int, float]:
    times, found = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        found = len(detector.detect(image))
        times.append(time.perf_counter() - start)
    return found, 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_shared_argument(parser)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    photos = lfw_photos(args.shared)[::500][:4]
    lfw = read_image(photos[0])
    images = {
        "LFW 250x250": lfw,
        "booth 24 MP (one large face)": cv2.resize(lfw, (4900, 4900)),
        "event 12 MP, 4 small faces": event_photo(photos, 4240, 2830),
        "event 24 MP, 4 small faces": event_photo(photos, 6000, 4000),
    }
    rows = []
    for name in ("yunet", "mtcnn"):
        detector = detect.create_detector(name)
        for kind, image in images.items():
            found, with_pass = timed(detector, image, args.repeats)
            side = detect.SMALL_FACE_SIDE
            detect.SMALL_FACE_SIDE = 0  # no face is ever too small: one pass only
            try:
                found_before, one_pass = timed(detector, image, args.repeats)
            finally:
                detect.SMALL_FACE_SIDE = side
            rows.append(
                [name, kind, str(found_before), str(found), f"{one_pass:.0f}", f"{with_pass:.0f}"]
            )
    print_table(
        ["detector", "photo", "found, one pass", "found", "ms, one pass", "ms, with tiles"], rows
    )


if __name__ == "__main__":
    main()
