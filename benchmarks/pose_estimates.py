"""How far the 5-point head-pose values of `fiqa_cli.runtime.measures` can be trusted (issue 16).

Real LFW photos are rotated in the image plane by known angles and flipped left-right, then
detected again. Roll should follow the rotation exactly; yaw and pitch should not move with
a rotation, and a flip should negate yaw and keep pitch. Nothing here knows a photo's true
yaw or pitch (no 3D ground truth), so their absolute error stays unmeasured: these are the
errors that can be measured, and the roll error bounds `tests/test_measures.py`.

    python benchmarks/pose_estimates.py [--shared PATH] [--images N] [--detector mtcnn|scrfd]
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np
from common import add_shared_argument, lfw_photos, spread_sample

from fiqa_cli.choices import CENTRAL_FACE
from fiqa_cli.runtime.decode import read_image
from fiqa_cli.runtime.detect import create_detector
from fiqa_cli.runtime.face_choice import chosen_face_index
from fiqa_cli.runtime.measures import pose_from_landmarks

ANGLES = (-20, -10, -5, 5, 10, 20)


def rotated(image: np.ndarray, degrees: float) -> np.ndarray:
    """The image turned counter-clockwise on screen by `degrees` about its centre (which
    lowers the eye line's angle by as much); borders repeat the edge pixels."""
    height, width = image.shape[:2]
    turn = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    return cv2.warpAffine(image, turn, (width, height), borderMode=cv2.BORDER_REPLICATE)


def central_pose(image: np.ndarray, detector) -> tuple[float, float, float] | None:
    faces = detector.detect(image)
    if not faces:
        return None
    face = faces[chosen_face_index(faces, image.shape[:2], CENTRAL_FACE)]
    return pose_from_landmarks(face.landmarks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_shared_argument(parser)
    parser.add_argument("--images", type=int, default=60)
    parser.add_argument("--detector", default="scrfd", choices=("scrfd", "mtcnn"))
    args = parser.parse_args()
    model = args.shared / "models" / "scrfd_2.5g_bnkps.onnx" if args.detector == "scrfd" else None
    detector = create_detector(args.detector, model)
    roll_errors, yaw_drift, pitch_drift, flip_yaw, flip_pitch = [], [], [], [], []
    for photo in spread_sample(lfw_photos(args.shared), args.images):
        image = read_image(photo)
        base = central_pose(image, detector)
        if base is None:
            continue
        for angle in ANGLES:
            pose = central_pose(rotated(image, angle), detector)
            if pose is not None:
                roll_errors.append(pose[0] - (base[0] - angle))
                yaw_drift.append(pose[1] - base[1])
                pitch_drift.append(pose[2] - base[2])
        flipped = central_pose(image[:, ::-1].copy(), detector)
        if flipped is not None:
            flip_yaw.append(flipped[1] + base[1])
            flip_pitch.append(flipped[2] - base[2])
    print(f"detector {args.detector}, {args.images} LFW photos, rotations {ANGLES} degrees")
    print(f"{'error (degrees)':<42}{'n':>6}{'mean':>8}{'|e| p50':>9}{'|e| p95':>9}{'|e| max':>9}")
    for name, values in (
        ("roll - expected roll, rotated", roll_errors),
        ("yaw change under rotation", yaw_drift),
        ("pitch change under rotation", pitch_drift),
        ("yaw(flipped) + yaw, flipped", flip_yaw),
        ("pitch(flipped) - pitch, flipped", flip_pitch),
    ):
        errors = np.asarray(values)
        magnitude = np.abs(errors)
        print(
            f"{name:<42}{errors.size:>6}{errors.mean():>8.2f}{np.median(magnitude):>9.2f}"
            f"{np.percentile(magnitude, 95):>9.2f}{magnitude.max():>9.2f}"
        )


if __name__ == "__main__":
    main()
