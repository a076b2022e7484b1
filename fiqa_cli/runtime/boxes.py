"""Box and point geometry shared by detection, alignment and evaluation: areas and overlaps
of x1, y1, x2, y2 boxes, and 2x3 affine maps applied to points."""

from __future__ import annotations

import numpy as np


def box_areas(boxes: np.ndarray) -> np.ndarray:
    """Area of each x1, y1, x2, y2 box (N x >=4), in the boxes' own float type (MTCNN's
    suppression decisions at its thresholds follow float32 rounding); inverted boxes have
    area 0."""
    boxes = np.asarray(boxes).reshape(-1, np.shape(boxes)[-1])
    sides = np.clip(boxes[:, 2:4] - boxes[:, 0:2], 0.0, None)
    return sides[:, 0] * sides[:, 1]


def intersections(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Intersection area of `box` with each row of `others`."""
    others = np.asarray(others).reshape(-1, np.shape(others)[-1])
    low = np.maximum(box[0:2], others[:, 0:2])
    high = np.minimum(box[2:4], others[:, 2:4])
    return np.prod(np.clip(high - low, 0.0, None), axis=1)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boxes (0 when both are empty)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    intersection = float(intersections(a, b)[0])
    union = float(box_areas(a)[0] + box_areas(b)[0]) - intersection
    return intersection / union if union > 0 else 0.0


def transform_points(affine: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine map to Nx2 points."""
    return points @ affine[:, :2].T + affine[:, 2]
