"""Component quality measures of one face, each as a native value and a 0-100 score.

Definitions and mapping constants follow OFIQ v1.0.x (BSI-OFIQ/OFIQ-Project, the ISO/IEC
29794-5 reference implementation) where OFIQ defines the measure; no OFIQ code is used. OFIQ
runs its own detector, 98 landmarks, a head-pose network and a face-segmentation network;
fiqa has a box, a score and 5 landmarks, so several measures are estimates (`ESTIMATED`) whose
values are not OFIQ's. A score is an int in 0..100, higher is better, -1 when the measure
cannot be assessed (ISO/IEC 29794-1): no geometry with --detector none, landmarks outside
the image.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from fiqa_cli.runtime.align import arcface_template
from fiqa_cli.runtime.boxes import box_areas
from fiqa_cli.runtime.detect import Face
from fiqa_cli.runtime.face_mesh import MIN_PRESENCE, Mesh
from fiqa_cli.runtime.measure_kinds import (
    GEOMETRIC,
    MEASURE_NAMES,
    NOT_ASSESSED,
    Measure,
)
from fiqa_cli.runtime.mesh_measures import mesh_measures
from fiqa_cli.runtime.mesh_pose import mesh_pose
from fiqa_cli.runtime.scores import clamped as _clamped
from fiqa_cli.runtime.scores import ofiq_score, sigmoid

# OFIQ's canonical frame: the 5 points go to these positions in a 616x616 image
# (OFIQ's modules/utils/src/utils.cpp; the ArcFace template scaled and shifted; IED 113 px).
_OFIQ_REFERENCE = np.float32([[251, 272], [364, 272], [308, 336], [262, 402], [355, 402]])
# The part of that frame the photometric measures read (x1, y1, x2, y2): the face, no more.
_WINDOW = (196, 224, 420, 496)
# OFIQ takes the face region from 98 landmarks and a segmentation network; without them the
# face is this fixed ellipse of the canonical frame (centre, half-axes), from the eyebrows to
# an estimated chin and across the cheeks: an estimate.
_FACE_ELLIPSE = ((308, 360), (105, 130))
# Chin below the eye midpoint, in eye-to-mouth distances (face proportions; OFIQ takes the
# chin from its landmarks): an estimate, as are the margins and head size built on it.
_CHIN_PER_EYE_TO_MOUTH = 1.7
# A frontal face's nose lies 0.53 of the way from the eye line to the mouth line (the median
# over 120 LFW photos, every 80th of lfw-devtrain, with SCRFD and with MTCNN alike; LFW is
# mostly frontal) and (assumed) 0.5 IED in front of the eye-mouth plane. Yaw and pitch come
# from the nose's offset against that: estimates whose error benchmarks/pose_estimates.py
# measures where it can (roll, flips), not against a true 3D pose.
_TEMPLATE_NOSE_DROP = 0.53
_NOSE_DEPTH_PER_IED = 0.5
# Sharpness: mean |Laplacian| over the standard deviation of the grey face in the 112x112
# crop (so per unit of face size and contrast). OFIQ uses a random forest fiqa does not have;
# the mapping is fiqa's own, from 100 LFW photos (every 95th of lfw-devtrain) blurred before
# alignment: median x 0.24 as they are, 0.16 with a Gaussian of sigma 1 px, 0.10 with sigma
# 2 px. Q is 50 at sigma 1's median, 88 at the sharp median, 19 at sigma 2's.
_SHARPNESS_X0 = 0.16
_SHARPNESS_W = 0.04
# OFIQ's background uniformity reads columns 62..554 and rows 0..406 of the canonical frame
# (its crop of 62 px on either side and 210 px below), scaled to 354x292, the resolution of
# its face-parsing map; the background is where that map finds no person, eroded by a 4x4
# kernel, and only where the photo was (not the padding around it).
_BACKGROUND_CROP = (62, 0, 554, 406)
_BACKGROUND_SIZE = (354, 292)
_BACKGROUND_EROSION = np.ones((4, 4), np.uint8)
# fiqa has no face-parsing network: the person in that region is taken to be this ellipse of
# the canonical frame (centre, half-axes), the head with ears and hair from an estimated crown
# to the chin (the neck and shoulders start below the region): an estimate, which counts a
# large hairdo's edge as background and a narrow head's surroundings as person.
_HEAD_ELLIPSE = ((308, 272), (175, 245))
# Less of that background inside the photo than this fraction (a face filling the frame, a
# loose crop cut by the photo's border) is too little to judge.
_BACKGROUND_MIN_FRACTION = 0.25


_UNASSESSED = Measure(None, NOT_ASSESSED)
# What _photometric computes: the light and the detail of the face itself.
_PHOTOMETRIC = (
    "luminance_mean", "under_exposure", "over_exposure", "dynamic_range",
    "illumination_uniformity", "natural_colour", "sharpness", "luminance_variance",
)  # fmt: skip


def measure_face(
    image: np.ndarray,
    face: Face | None,
    faces: Sequence[Face],
    crop: np.ndarray | None,
    *,
    mesh: Mesh | None = None,
    file_quality: float | None = None,
) -> dict[str, Measure]:
    """Every measure of `face` in the BGR `image` beside the other detected `faces`, with its
    aligned 112x112 `crop`, its face `mesh` (None: the mesh measures are not assessed) and
    `file_quality`, the image file's compression quality
    (`fiqa_cli.runtime.compression.file_quality`; None: unknown, not assessed). `face` None
    means the image is itself the crop (--detector none): the geometric measures are then not
    assessed. A face whose landmarks leave the image has no crop and nothing assessed."""
    if mesh is not None and mesh.presence < MIN_PRESENCE:
        mesh = None  # the model finds no face there: its points mean nothing
    if face is None:
        if crop is None:
            return dict.fromkeys(MEASURE_NAMES, _UNASSESSED)
        measures = dict.fromkeys(GEOMETRIC, _UNASSESSED)
        measures.update(_photometric(crop, arcface_template(crop.shape[1]), crop))
        measures.update(mesh_measures(crop, mesh))
        measures.update(_compression(file_quality))
        return {name: measures[name] for name in MEASURE_NAMES}
    height, width = image.shape[:2]
    if crop is None or not face.landmarks_inside(width, height):
        return dict.fromkeys(MEASURE_NAMES, _UNASSESSED)
    measures = _geometric(face, faces, width, height, mesh)
    measures.update(_background(image, face.landmarks))
    measures.update(_photometric(image, face.landmarks, crop))
    measures.update(mesh_measures(image, mesh))
    measures.update(_compression(file_quality))
    return {name: measures[name] for name in MEASURE_NAMES}


def _geometric(
    face: Face, faces: Sequence[Face], width: int, height: int, mesh: Mesh | None
) -> dict[str, Measure]:
    points = np.asarray(face.landmarks, dtype=np.float64)
    left_eye, right_eye = points[0], points[1]
    eye_mid, mouth_mid = (left_eye + right_eye) / 2, (points[3] + points[4]) / 2
    ied = float(np.hypot(*(right_eye - left_eye)))
    # The mesh's pose where there is one: steadier than the 5 points' (docs/measures.md).
    pose = None if mesh is None else mesh_pose(mesh.points, (height, width))
    roll, yaw, pitch = pose or pose_from_landmarks(points)
    chin = eye_mid + _CHIN_PER_EYE_TO_MOUTH * (mouth_mid - eye_mid)
    t = float(np.hypot(*(chin - eye_mid)))  # OFIQ's "T": eye midpoint to chin
    leftward = float(right_eye[0]) / ied
    rightward = (width - float(left_eye[0])) / ied
    above, below = float(eye_mid[1]) / t, (height - float(eye_mid[1])) / t
    head_size = t / height
    centre = float(eye_mid[0]) / width
    f = single_face_ratio(face, faces)
    return {
        "inter_eye_distance": Measure(ied, ofiq_score(ied, x0=70, w=20)),
        "head_roll": Measure(roll, _pose_score(roll)),
        "head_yaw": Measure(yaw, _pose_score(yaw)),
        "head_pitch": Measure(pitch, _pose_score(pitch)),
        "single_face": Measure(f, _clamped(100 * (1 - f))),
        "leftward_crop": Measure(leftward, ofiq_score(leftward, x0=0.9, w=0.1)),
        "rightward_crop": Measure(rightward, ofiq_score(rightward, x0=0.9, w=0.1)),
        "margin_above": Measure(above, ofiq_score(above, x0=1.4, w=0.1)),
        "margin_below": Measure(below, ofiq_score(below, x0=1.8, w=0.1)),
        "head_size": Measure(
            head_size, ofiq_score(abs(head_size - 0.45), h=200, a=1, s=-1, x0=0, w=0.05)
        ),
        # fiqa's own: 100 centred, 0 at either border.
        "face_centre": Measure(centre, _clamped(100 * (1 - min(1.0, abs(centre - 0.5) / 0.5)))),
    }


def pose_from_landmarks(points: np.ndarray) -> tuple[float, float, float]:
    """Roll, yaw and pitch in degrees from 5 landmarks (image-left eye, image-right eye,
    nose, image-left and image-right mouth corner). Roll is the eye line's angle (positive:
    the image-right eye lower); yaw (positive: nose towards the image right) and pitch
    (positive: chin up) are estimates from the nose's offset in the roll-corrected face."""
    points = np.asarray(points, dtype=np.float64)
    eye_mid, mouth_mid = (points[0] + points[1]) / 2, (points[3] + points[4]) / 2
    dx, dy = points[1] - points[0]
    roll = math.atan2(dy, dx)
    ied = math.hypot(dx, dy)
    # Coordinates along the eye line (u) and across it (v), from the eye midpoint.
    axis_u = np.array([math.cos(roll), math.sin(roll)])
    axis_v = np.array([-math.sin(roll), math.cos(roll)])
    nose, mouth = points[2] - eye_mid, mouth_mid - eye_mid
    face_length = float(mouth @ axis_v)  # eye line to mouth line
    depth = _NOSE_DEPTH_PER_IED * ied
    midline_u = float(mouth @ axis_u) / 2  # the face's midline halfway to the mouth
    yaw = math.atan2(float(nose @ axis_u) - midline_u, depth)
    drop = float(nose @ axis_v) / face_length if face_length > 0 else _TEMPLATE_NOSE_DROP
    pitch = math.atan2((_TEMPLATE_NOSE_DROP - drop) * face_length, depth)
    return math.degrees(roll), math.degrees(yaw), math.degrees(pitch)


def _pose_score(angle: float) -> int:
    return _clamped(100 * max(0.0, math.cos(math.radians(angle))) ** 2)


def single_face_ratio(face: Face, faces: Sequence[Face]) -> float:
    """OFIQ's f = sqrt(second-largest box area / largest), 0 for a lone face; `face` counts
    among `faces` even when the detector returned it alone."""
    areas = sorted(box_areas(np.array([other.bbox for other in faces])), reverse=True)
    if len(areas) < 2 or areas[0] <= 0:
        return 0.0
    return float(math.sqrt(areas[1] / areas[0]))


# sRGB (0..255) to linear light, as OFIQ's luminance image linearises before weighting.
_LINEAR = np.array(
    [
        (v / 255 / 12.92) if v / 255 <= 0.04045 else ((v / 255 + 0.055) / 1.055) ** 2.4
        for v in range(256)
    ]
)
# Each channel's share of 255 * linear luminance (Y = 0.2126 R + 0.7152 G + 0.0722 B), B G R,
# as one table cv2.LUT applies to all three channels at once (3 to 4 times faster than
# indexing three numpy tables, with the same values).
_LUMINANCE_PARTS = np.stack(
    [(255 * weight * _LINEAR).astype(np.float32) for weight in (0.0722, 0.7152, 0.2126)], axis=-1
).reshape(256, 1, 3)
_CHANNEL_SUM = np.ones((1, 3), np.float32)
_LEVELS = np.arange(256) / 255  # each luminance level on the 0-1 scale


def _luminance(image: np.ndarray) -> np.ndarray:
    """OFIQ's luminance image of a BGR image: 255 * linear luminance, rounded, uint8."""
    luminance = cv2.transform(cv2.LUT(image, _LUMINANCE_PARTS), _CHANNEL_SUM)
    luminance += 0.5
    return luminance.astype(np.uint8)  # truncation: the floor of these non-negative values


def _photometric(image: np.ndarray, landmarks: np.ndarray, crop: np.ndarray) -> dict[str, Measure]:
    window = _canonical_window(image, landmarks)
    if window is None:
        return dict.fromkeys(_PHOTOMETRIC, _UNASSESSED)
    luminance = _luminance(window)
    face = luminance[_FACE_MASK]
    histogram = np.bincount(face, minlength=256) / face.size
    mean = float(histogram @ _LEVELS)
    # OFIQ: the variance of the face's luminance histogram, on the 0-1 scale.
    variance = float(histogram @ np.square(_LEVELS - mean))
    under = float(histogram[:26].sum())
    over = float(histogram[247:].sum())
    present = histogram[histogram > 0]
    entropy = float(-(present * np.log2(present)).sum())
    left, right = _CHEEK_ZONES
    uniformity = _histogram_intersection(luminance[left], luminance[right])
    colour = _colour_distance(np.concatenate([window[left], window[right]]))
    sharpness = sharpness_ratio(crop)
    return {
        "luminance_mean": Measure(
            mean, _clamped(100 * sigmoid((mean - 0.2) / 0.05) * (1 - sigmoid((mean - 0.8) / 0.05)))
        ),
        "under_exposure": Measure(under, ofiq_score(under, h=120, a=0.832, s=-1, x0=0.92, w=0.05)),
        "over_exposure": Measure(over, _clamped(1 / (over + 0.01))),
        "dynamic_range": Measure(entropy, _clamped(12.5 * entropy)),
        "illumination_uniformity": Measure(uniformity, _clamped(100 * uniformity**0.3)),
        "natural_colour": Measure(colour, ofiq_score(colour, h=200, a=1, s=-1, x0=0, w=10)),
        "sharpness": Measure(sharpness, ofiq_score(sharpness, x0=_SHARPNESS_X0, w=_SHARPNESS_W)),
        "luminance_variance": Measure(variance, luminance_variance_score(variance)),
    }


def luminance_variance_score(variance: float) -> int:
    """OFIQ's mapping: 100 at a variance of 1/60 (a standard deviation of 0.13), falling to 0
    for a flat face and towards 0 for one of only black and white."""
    return _clamped(100 * math.sin(math.pi * 60 * variance / (60 * variance + 1)))


def _compression(file_quality: float | None) -> dict[str, Measure]:
    """The file's compression quality as it is, 100 for a lossless file (fiqa's reading of
    the file's bytes; OFIQ's measure is a network on the face, which fiqa does not have)."""
    if file_quality is None:
        return {"compression_artifacts": _UNASSESSED}
    return {"compression_artifacts": Measure(file_quality, _clamped(file_quality))}


def _background(image: np.ndarray, landmarks: np.ndarray) -> dict[str, Measure]:
    """OFIQ's background uniformity: the mean luminance gradient magnitude (Scharr) over the
    background of its region of the canonical frame, with the head estimated (`_HEAD_ELLIPSE`)
    where OFIQ segments it; not assessed where too little of that background is in the photo."""
    to_frame, _ = cv2.estimateAffinePartial2D(
        np.asarray(landmarks, dtype=np.float32), _OFIQ_REFERENCE, method=cv2.LMEDS
    )
    if to_frame is None:
        return {"background_uniformity": _UNASSESSED}
    x1, y1, x2, y2 = _BACKGROUND_CROP
    to_frame[:, 2] -= (x1, y1)
    to_frame *= _BACKGROUND_SIZE[0] / (x2 - x1)
    region = cv2.warpAffine(
        image, to_frame, _BACKGROUND_SIZE, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    inside = _from_photo(cv2.invertAffineTransform(to_frame), image.shape[:2])
    if inside is None:
        mask = _FULL_BACKGROUND_MASK
    else:
        mask = cv2.erode(inside.astype(np.uint8) & _NOT_HEAD, _BACKGROUND_EROSION)
        if np.count_nonzero(mask) < _BACKGROUND_MIN_FRACTION * _FULL_BACKGROUND:
            return {"background_uniformity": _UNASSESSED}
    luminance = _luminance(region)
    gradient = cv2.magnitude(
        cv2.Scharr(luminance, cv2.CV_32F, 1, 0), cv2.Scharr(luminance, cv2.CV_32F, 0, 1)
    )
    mean = cv2.mean(gradient, mask)[0]
    return {
        "background_uniformity": Measure(mean, ofiq_score(mean, h=190, a=1, s=-1, x0=10, w=100))
    }


def _from_photo(to_photo: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
    """Which pixels of the background region come from inside the photo (boolean, the
    region's shape) under the affine map `to_photo`, or None when all of them do. The
    region's corners decide that: the photo is convex, so when they map into it every pixel
    between them does (the case of most photos, at no per-pixel cost)."""
    height, width = shape[:2]
    from_x, from_y = to_photo @ _REGION_CORNERS
    if _within(from_x, width).all() and _within(from_y, height).all():
        return None
    # Row and column terms broadcast: no per-pixel matrix product (a BLAS call that spreads
    # over the cores the pipeline's other workers are using).
    from_x = to_photo[0, 0] * _REGION_X + (to_photo[0, 1] * _REGION_Y + to_photo[0, 2])
    from_y = to_photo[1, 0] * _REGION_X + (to_photo[1, 1] * _REGION_Y + to_photo[1, 2])
    return _within(from_x, width) & _within(from_y, height)


def _within(coordinate: np.ndarray, size: int) -> np.ndarray:
    """Whether a pixel coordinate lies in a row or column of `size` pixels (centres 0..size-1)."""
    return (coordinate > -0.5) & (coordinate < size - 0.5)


def _canonical_window(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray | None:
    """The face in OFIQ's canonical frame, cut to `_WINDOW`: a similarity fitted to the 5
    points with LMedS, as OFIQ fits its own 5 points; None when no fit exists (points all
    in one place)."""
    to_frame, _ = cv2.estimateAffinePartial2D(
        np.asarray(landmarks, dtype=np.float32), _OFIQ_REFERENCE, method=cv2.LMEDS
    )
    if to_frame is None:
        return None
    x1, y1, x2, y2 = _WINDOW
    to_frame[:, 2] -= (x1, y1)
    return cv2.warpAffine(image, to_frame, (x2 - x1, y2 - y1), flags=cv2.INTER_LINEAR)


def _face_mask() -> np.ndarray:
    x1, y1, x2, y2 = _WINDOW
    (cx, cy), (ax, ay) = _FACE_ELLIPSE
    ys, xs = np.mgrid[y1:y2, x1:x2]
    return ((xs - cx) / ax) ** 2 + ((ys - cy) / ay) ** 2 <= 1


def _cheek_zones() -> tuple[tuple[slice, slice], tuple[slice, slice]]:
    """OFIQ's two squares of side 0.3 IED, inward of each eye and half the eye-to-mouth
    distance below it, in window coordinates (OFIQ's image_utils.cpp)."""
    (lx, ly), (rx, _), _, (_, mouth_y), _ = _OFIQ_REFERENCE.astype(int)
    ied = rx - lx
    side = int(0.3 * ied)
    top = ly + int((mouth_y - ly) / 2) - _WINDOW[1]
    rows = slice(top, top + side)
    left = slice(lx - _WINDOW[0], lx - _WINDOW[0] + side)
    right = slice(rx - side - _WINDOW[0], rx - _WINDOW[0])
    return (rows, left), (rows, right)


def _not_head() -> np.ndarray:
    """1 where the background region (at its 354x292 size) is not the estimated head."""
    x1, y1, x2, y2 = _BACKGROUND_CROP
    scale = (x2 - x1) / _BACKGROUND_SIZE[0]
    ys, xs = np.mgrid[0 : _BACKGROUND_SIZE[1], 0 : _BACKGROUND_SIZE[0]] * scale + [[[y1]], [[x1]]]
    (cx, cy), (ax, ay) = _HEAD_ELLIPSE
    return (((xs - cx) / ax) ** 2 + ((ys - cy) / ay) ** 2 > 1).astype(np.uint8)


_FACE_MASK = _face_mask()
_CHEEK_ZONES = _cheek_zones()
_NOT_HEAD = _not_head()
# The background region's pixel columns (a row), its rows (a column) and its corner pixels
# (x, y, 1 as columns).
_REGION_X = np.arange(_BACKGROUND_SIZE[0], dtype=np.float64)
_REGION_Y = np.arange(_BACKGROUND_SIZE[1], dtype=np.float64)[:, np.newaxis]
_REGION_CORNERS = np.array(
    [[x, y, 1] for x in (0, _BACKGROUND_SIZE[0] - 1) for y in (0, _BACKGROUND_SIZE[1] - 1)],
    dtype=np.float64,
).T
# The background pixels of a photo that covers the whole region.
_FULL_BACKGROUND_MASK = cv2.erode(_NOT_HEAD, _BACKGROUND_EROSION)
_FULL_BACKGROUND = np.count_nonzero(_FULL_BACKGROUND_MASK)


def _histogram_intersection(a: np.ndarray, b: np.ndarray) -> float:
    ha = np.bincount(a.ravel(), minlength=256) / a.size
    hb = np.bincount(b.ravel(), minlength=256) / b.size
    return float(np.minimum(ha, hb).sum())


# sRGB linear to XYZ (D50) and the D50 white, OFIQ's NaturalColour constants.
_TO_XYZ = np.array(
    [[0.43605, 0.38508, 0.14309], [0.22249, 0.71689, 0.06062], [0.01393, 0.09710, 0.71419]]
)
_WHITE = np.array([0.964221, 1.0, 0.825211])


def _colour_distance(pixels_bgr: np.ndarray) -> float:
    """OFIQ's natural-colour value: how far the cheeks' mean CIELAB a, b lie outside
    a in [5, 25], b in [5, 35]; 100 when either is negative. (OFIQ's code has k = 24289/27
    where CIELAB has 24389/27; fiqa uses CIELAB's.)"""
    mean_bgr = pixels_bgr.reshape(-1, 3).mean(axis=0) / 255
    rgb = mean_bgr[::-1]
    linear = np.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    xyz = _TO_XYZ @ linear / _WHITE
    epsilon, kappa = 216 / 24389, 24389 / 27
    f = np.where(xyz > epsilon, np.cbrt(xyz), (kappa * xyz + 16) / 116)
    a, b = 500 * (f[0] - f[1]), 200 * (f[1] - f[2])
    if a < 0 or b < 0:
        return 100.0
    return float(math.hypot(max(0.0, 5 - a, a - 25), max(0.0, 5 - b, b - 35)))


def sharpness_ratio(crop: np.ndarray) -> float:
    """Mean |Laplacian| over the grey standard deviation in the centre of an aligned crop
    (eyes to mouth, cheek to cheek): per unit of face size, since the crop fixes the IED, and
    of contrast. fiqa's estimate; OFIQ's measure is a random forest on other features."""
    size = crop.shape[0]
    centre = crop[size * 3 // 10 : size * 9 // 10, size // 5 : size * 4 // 5]
    grey = cv2.cvtColor(centre, cv2.COLOR_BGR2GRAY).astype(np.float32)
    spread = float(grey.std())
    if spread < 1e-3:
        return 0.0
    return float(np.abs(cv2.Laplacian(grey, cv2.CV_32F)).mean()) / spread
