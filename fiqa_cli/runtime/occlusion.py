"""Eye and mouth occlusion from the face mesh: estimates of ISO/IEC 29794-5's EyesVisible and
MouthOcclusionPrevention.

OFIQ takes the occluded share of each region from a face-occlusion segmentation network that
fiqa does not have. Here a pixel counts as occluded when it is featureless: an open eye (iris,
sclera, lids, lashes) and the lips (their line, their edges, teeth) show contrast almost
everywhere at a scale of about a tenth of the eye distance, where a flat bar, a patch or a dark
lens over them shows none. The face is first brought to one scale (the mesh's eye centres
CANONICAL_IOD pixels apart, eyes level), so the contrast window and the threshold mean the
same on every face. A textured occluder (a patterned cloth, a busy background pasted in) shows
contrast too and is missed where it does: the value is an estimate, not OFIQ's
(docs/measures.md has the figures).
"""

from __future__ import annotations

import cv2
import numpy as np

from fiqa_cli.runtime.boxes import transform_points
from fiqa_cli.runtime.face_mesh import (
    LEFT_EYE_CONTOUR,
    MIN_PRESENCE,
    RIGHT_EYE_CONTOUR,
    Mesh,
    five_points,
)
from fiqa_cli.runtime.measure_kinds import NOT_ASSESSED, Measure
from fiqa_cli.runtime.scores import clamped

# MediaPipe's outer lip contour, in order around the mouth from the image-left corner.
OUTER_LIP_CONTOUR = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0,
                     37, 39, 40, 185)  # fmt: skip
# The canonical frame: eyes level, CANONICAL_IOD apart, on row _EYE_ROW of a _SIZE image
# (width, height) that holds the face down to below the mouth.
CANONICAL_IOD = 64
_SIZE = (192, 208)
_EYE_ROW = 72
# Local contrast: the grey standard deviation (OpenCV's 8-bit CIELAB L) in a _WINDOW-pixel
# square of the canonical frame (0.08 IOD). Below FLAT_CONTRAST a pixel is featureless.
# fiqa's choice; on 300 LFW and 300 CelebA faces (benchmarks/occlusion.py) unedited eye
# openings and lips have a median of 0-1% featureless pixels, JPEG-saved flat bars 100%.
_WINDOW = 5
FLAT_CONTRAST = 3.0
# Beyond a region's contours: half the window, and the pixel a contour's rounding may add.
_REGION_MARGIN = _WINDOW // 2 + 1

_UNASSESSED = Measure(None, NOT_ASSESSED)


def occlusion_measures(image: np.ndarray, mesh: Mesh | None) -> dict[str, Measure]:
    """`eyes_visible` and `mouth_occlusion` of the face `mesh` in the BGR `image`: each the
    featureless share of its region (both eye openings together; the lips) and the score
    100 * (1 - share), as OFIQ scores its occluded share. Not assessed without a mesh, when
    the mesh is not on a face (or not finite), or when a region leaves the photo."""
    names = ("eyes_visible", "mouth_occlusion")
    if mesh is None or mesh.presence < MIN_PRESENCE or not np.isfinite(mesh.points).all():
        return dict.fromkeys(names, _UNASSESSED)
    height, width = image.shape[:2]
    regions = ((LEFT_EYE_CONTOUR, RIGHT_EYE_CONTOUR), (OUTER_LIP_CONTOUR,))
    to_frame = _canonical_map(mesh)
    frame = cv2.warpAffine(image, to_frame, _SIZE, flags=cv2.INTER_LINEAR)
    points = transform_points(to_frame, mesh.points[:, :2].astype(np.float64))
    measures = {}
    for name, region in zip(names, regions, strict=True):
        inside = mesh.points[[index for loop in region for index in loop], :2]
        if np.any(inside < 0) or np.any(inside > (width - 1, height - 1)):
            measures[name] = _UNASSESSED
            continue
        share = _share(frame, points, region)
        measures[name] = _UNASSESSED if share is None else _occluded(share)
    return measures


def _occluded(share: float) -> Measure:
    return Measure(share, clamped(100 * (1 - share)))


def _canonical_map(mesh: Mesh) -> np.ndarray:
    """The similarity taking the mesh's eye centres to their canonical places."""
    left, right = five_points(mesh.points)[:2].astype(np.float64)
    dx, dy = right - left
    scale = CANONICAL_IOD / max(float(np.hypot(dx, dy)), 1e-6)
    angle = np.arctan2(dy, dx)
    cos, sin = np.cos(angle) * scale, np.sin(angle) * scale
    linear = np.array([[cos, sin], [-sin, cos]])
    target = np.array([(_SIZE[0] - CANONICAL_IOD) / 2, _EYE_ROW])
    return np.column_stack([linear, target - linear @ left])


def _featureless(frame_bgr: np.ndarray) -> np.ndarray:
    """Where the canonical frame shows no local contrast (boolean, one per pixel)."""
    lightness = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2LAB)[..., 0].astype(np.float64)
    # Window sums of whole numbers, exact in float64 wherever the window lies; float32 running
    # means would round differently with the window's place and flip pixels near the threshold.
    area = _WINDOW * _WINDOW
    sums = cv2.boxFilter(lightness, -1, (_WINDOW, _WINDOW), normalize=False)
    squares = cv2.boxFilter(lightness * lightness, -1, (_WINDOW, _WINDOW), normalize=False)
    # variance < FLAT_CONTRAST^2, times area^2 to stay in whole numbers
    return area * squares - sums * sums < (FLAT_CONTRAST * area) ** 2


def _share(
    frame: np.ndarray, points: np.ndarray, region: tuple[tuple[int, ...], ...]
) -> float | None:
    """The featureless share of the pixels inside the region's contours (one for the mouth,
    one per eye) in the canonical `frame`, or None when they enclose no pixel.

    Only the contours' box is looked at, _REGION_MARGIN pixels wider than they reach: the
    contrast window of every pixel inside them then lies in the box (or meets the frame's
    edge where the whole frame's would), so the share is the whole frame's, for a fraction
    of the colour conversion and filtering."""
    loops = [np.round(points[list(loop)] * 4).astype(np.int32) for loop in region]  # 1/4 px
    reach = np.concatenate(loops)
    x1, y1 = np.maximum(reach.min(axis=0) // 4 - _REGION_MARGIN, 0)
    x2, y2 = np.minimum(reach.max(axis=0) // 4 + _REGION_MARGIN + 1, _SIZE)
    if x1 >= x2 or y1 >= y2:
        return None
    box = frame[y1:y2, x1:x2]
    mask = np.zeros(box.shape[:2], np.uint8)
    for loop in loops:  # one at a time: their union (one call would leave overlaps out)
        cv2.fillPoly(mask, [loop - (4 * x1, 4 * y1)], 1, shift=2)
    inside = mask.astype(bool)
    if not inside.any():
        return None
    return float(_featureless(box)[inside].mean())
