"""How the mesh's occlusion estimates (`eyes_visible`, `mouth_occlusion`) separate real faces
from covered ones: their values on unedited LFW and CelebA photos (false alarms) and on the same
photos with synthetic occluders drawn over the eyes or the mouth (tests/occlusions.py; each
edited photo JPEG-saved and detected afresh, as a user's photo would be).

Each photo's central face (YuNet), its mesh, the measures. Per set and edit: faces, edited
photos without a detected face, values not assessed, the value's percentiles, and the share of
faces at or above each threshold (for unedited photos: false alarms, unless a real occluder is
there: --sheet writes the unedited faces at or above --flag to a PNG contact sheet to look at).

    python benchmarks/occlusion.py [--shared PATH] [--images 300] [--sheet /tmp/flagged.png]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
from common import REPO_ROOT, add_shared_argument, lfw_photos, print_table, spread_sample

from fiqa_cli.paths import face_mesh_model_path
from fiqa_cli.runtime.decode import read_image
from fiqa_cli.runtime.detect import create_detector
from fiqa_cli.runtime.face_mesh import FaceMesh
from fiqa_cli.runtime.occlusion import occlusion_measures
from fiqa_cli.runtime.providers import CPU

# The occluders are test material (tests/occlusions.py), shared with the occlusion tests.
sys.path.insert(0, str(REPO_ROOT / "tests"))
from closeups import central_face  # noqa: E402
from occlusions import occluded  # noqa: E402

THRESHOLDS = (0.3, 0.4, 0.5)
UNEDITED = "unedited"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_shared_argument(parser)
    parser.add_argument("--images", type=int, default=300, help="photos per set")
    parser.add_argument("--sheet", type=Path, help="PNG of the unedited faces flagged")
    parser.add_argument("--flag", type=float, default=0.2, help="value flagged on --sheet")
    args = parser.parse_args()
    celeba = sorted((args.shared / "data" / "celeba-wild").glob("*/*.jpg"))
    sets = {
        "LFW": spread_sample(lfw_photos(args.shared), args.images),
        "CelebA": spread_sample(celeba, args.images),
    }
    detector = create_detector("yunet")
    face_mesh = FaceMesh(face_mesh_model_path(), [CPU])

    def measured(image: np.ndarray) -> dict | None:
        face = central_face(detector.detect(image), image.shape)
        return None if face is None else occlusion_measures(image, face_mesh.mesh(image, face))

    for set_name, photos in sets.items():
        values: dict[str, list[dict | None]] = {}
        flagged = []
        for photo in photos:
            image = read_image(photo)
            face = central_face(detector.detect(image), image.shape)
            if face is None:
                continue
            mesh = face_mesh.mesh(image, face)
            measures = occlusion_measures(image, mesh)
            values.setdefault(UNEDITED, []).append(measures)
            if any((m.value or 0) >= args.flag for m in measures.values()):
                flagged.append((image, measures))
            for edit, edited in occluded(image, mesh).items():
                values.setdefault(edit, []).append(measured(edited))
        for measure in ("eyes_visible", "mouth_occlusion"):
            print(f"\n{set_name}, {measure}: occluded share (p5 for edits, p95 unedited)")
            print_table(
                ["edit", "faces", "no face", "not assessed", "p5", "p50", "p95", "max"]
                + [f">= {t}" for t in THRESHOLDS],
                [_row(edit, found, measure) for edit, found in values.items()],
            )
        if args.sheet:
            sheet = args.sheet.with_name(f"{args.sheet.stem}-{set_name}{args.sheet.suffix}")
            _write_sheet(sheet, flagged)
            print(f"{len(flagged)} unedited faces with a value >= {args.flag}: {sheet}")


def _row(edit: str, found: list[dict | None], measure: str) -> list[str]:
    faces = [f for f in found if f is not None]
    values = np.array([f[measure].value for f in faces if f[measure].value is not None])
    shares = [f"{np.mean(values >= t):.1%}" for t in THRESHOLDS]
    percentiles = [f"{p:.2f}" for p in np.percentile(values, [5, 50, 95, 100])]
    return [edit, str(len(faces)), str(len(found) - len(faces)),
            str(len(faces) - len(values)), *percentiles, *shares]  # fmt: skip


def _write_sheet(path: Path, flagged: list) -> None:
    tiles = []
    for image, measures in flagged:
        tile = cv2.resize(image, (200, 200))
        label = " ".join(
            f"{m.value:.2f}" if m.value is not None else "-" for m in measures.values()
        )
        cv2.putText(tile, label, (2, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 255, 0), 1)
        tiles.append(tile)
    if not tiles:
        return
    tiles += [np.zeros_like(tiles[0])] * (-len(tiles) % 8)
    cv2.imwrite(
        str(path), np.vstack([np.hstack(tiles[i : i + 8]) for i in range(0, len(tiles), 8)])
    )


if __name__ == "__main__":
    main()
