"""YuNet face boxes with landmarks from MTCNN's O-Net: `--detector yunet`.

YuNet (OpenCV model zoo, MIT; shipped in fiqa_cli/models) finds faces several times faster than
the MTCNN cascade, but its own 5 points are too noisy to align with: their mean distance from
SCRFD-2.5G's, over the inter-ocular distance, is about 0.09 (MTCNN: 0.04), and the error is
scatter, not an offset a constant could remove. So only its boxes are kept, and the points come
from MTCNN's last network, O-Net, run once per YuNet box on the square that MTCNN itself would
hand it (`onet_squares`). That agrees with SCRFD slightly better than the whole cascade does
(benchmarks/detectors.py).

YuNet runs on onnxruntime rather than `cv2.FaceDetectorYN`: the decoding below is OpenCV's, with
the same output, about twice as fast, and the session follows fiqa's providers and threads.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from fiqa_cli.runtime.mtcnn import ONET_FILE, run_onet
from fiqa_cli.runtime.providers import Providers, open_session

# OpenCV's demo keeps 0.9; 0.9 lost 1.1% of LFW faces that 0.5-0.8 all found.
SCORE_THRESHOLD = 0.6
NMS_THRESHOLD = 0.3
# YuNet was trained on faces of about 10 to 300 pixels. Images are searched with the long side
# at most MAX_SIDE; when that finds nothing, once more: a larger image at RETRY_SIDE, which
# brings a face that fills a large frame into that range, a smaller one at UPSCALE times its
# size (at most MAX_SIDE), which finds strongly tilted faces in small photos (2 of 600
# in-the-wild CelebA photos of 224x224, heads rolled about 50 degrees, that MTCNN found).
MAX_SIDE = 640
RETRY_SIDE = 320
UPSCALE = 2.0
_STRIDES = (8, 16, 32)
# A YuNet box -> the square MTCNN's own cascade gives O-Net for the same face: side
# ONET_SQUARE_SCALE x the box's longer side, centre moved by ONET_SQUARE_SHIFT x that side.
# Medians over 596 LFW devtrain photos of MTCNN's O-Net input boxes, so the constants come from
# MTCNN (MIT) alone, not from the SCRFD models it is compared with.
ONET_SQUARE_SCALE = 0.96
ONET_SQUARE_SHIFT = (-0.011, 0.002)


def _no_faces() -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((0, 5), np.float32), np.zeros((0, 5, 2), np.float32)


class YuNet:
    """One YuNet session; `detect` returns boxes (N x 5: x1, y1, x2, y2, score) and YuNet's own
    landmarks (N x 5 x 2) in the pixels of the image given, at that image's size."""

    def __init__(
        self,
        model_path: Path,
        providers: Providers,
        options: ort.SessionOptions | None = None,
        score_threshold: float = SCORE_THRESHOLD,
    ):
        self._session = open_session(model_path, providers, options)
        self._input = self._session.get_inputs()[0].name
        self._outputs = [output.name for output in self._session.get_outputs()]
        self.score_threshold = score_threshold

    def detect(self, image_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        blob = _blob(image_bgr)
        outputs = self._session.run(self._outputs, {self._input: blob})
        named = dict(zip(self._outputs, outputs, strict=True))
        rows = _decode(named, blob.shape[3], self.score_threshold)
        if not len(rows):
            return _no_faces()
        kept = cv2.dnn.NMSBoxes(
            rows[:, 0:4].tolist(), rows[:, 14].tolist(), self.score_threshold, NMS_THRESHOLD
        )
        rows = rows[np.asarray(kept, dtype=int).reshape(-1)]
        boxes = np.column_stack([rows[:, 0:2], rows[:, 0:2] + rows[:, 2:4], rows[:, 14]])
        # YuNet lists the subject's right eye first, which is the image's left one: fiqa's order.
        return boxes.astype(np.float32), rows[:, 4:14].reshape(-1, 5, 2).astype(np.float32)


def _blob(image_bgr: np.ndarray) -> np.ndarray:
    """The network input: BGR 0-255, NCHW, zero-padded at the bottom and right to a multiple of
    the largest stride."""
    height, width = image_bgr.shape[:2]
    step = _STRIDES[-1]
    blob = np.zeros((1, 3, -(-height // step) * step, -(-width // step) * step), np.float32)
    blob[0, :, :height, :width] = image_bgr.transpose(2, 0, 1)
    return blob


def _decode(
    outputs: dict[str, np.ndarray], padded_width: int, score_threshold: float
) -> np.ndarray:
    """Rows (x, y, w, h, 10 landmark coordinates, score) of every anchor above the threshold,
    decoded as OpenCV's FaceDetectorYN decodes them: score sqrt(class x objectness)."""
    rows = []
    for stride in _STRIDES:
        classes = np.clip(outputs[f"cls_{stride}"][0, :, 0], 0, 1)
        objectness = np.clip(outputs[f"obj_{stride}"][0, :, 0], 0, 1)
        score = np.sqrt(classes * objectness)
        keep = np.nonzero(score >= score_threshold)[0]
        if not len(keep):
            continue
        columns = padded_width // stride
        cell = np.column_stack([keep % columns, keep // columns]).astype(np.float32)
        box = outputs[f"bbox_{stride}"][0, keep]
        centre = (cell + box[:, 0:2]) * stride
        size = np.exp(box[:, 2:4]) * stride
        points = (outputs[f"kps_{stride}"][0, keep].reshape(-1, 5, 2) + cell[:, None]) * stride
        rows.append(np.column_stack([centre - size / 2, size, points.reshape(-1, 10), score[keep]]))
    return np.concatenate(rows).astype(np.float32) if rows else np.zeros((0, 15), np.float32)


def onet_squares(boxes: np.ndarray) -> np.ndarray:
    """The square O-Net input boxes (N x 4) for YuNet boxes (x1, y1, x2, y2, ...)."""
    side = (boxes[:, 2:4] - boxes[:, 0:2]).max(axis=1, keepdims=True)
    centre = (boxes[:, 0:2] + boxes[:, 2:4]) / 2 + np.float32(ONET_SQUARE_SHIFT) * side
    half = side * ONET_SQUARE_SCALE / 2
    return np.column_stack([centre - half, centre + half]).astype(np.float32)


class YuNetOnet:
    """YuNet boxes, searched at a capped size, with O-Net's landmarks on the full image: the
    detector backend of `--detector yunet` (boxes N x 5 and landmarks N x 5 x 2)."""

    def __init__(
        self,
        model_path: Path,
        mtcnn_weights: Path,
        providers: Providers,
        options: ort.SessionOptions | None = None,
    ):
        self._yunet = YuNet(model_path, providers, options)
        self._onet = open_session(mtcnn_weights / ONET_FILE, providers, options)

    def detect(self, image_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        boxes = self._boxes(image_bgr)
        if not len(boxes):
            return _no_faces()
        rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)
        _, landmarks, _ = run_onet(self._onet, rgb, onet_squares(boxes))
        return boxes, landmarks.astype(np.float32)

    def _boxes(self, image_bgr: np.ndarray) -> np.ndarray:
        long_side = max(image_bgr.shape[:2])
        retry = RETRY_SIDE if long_side > RETRY_SIDE else min(UPSCALE * long_side, MAX_SIDE)
        for side in (min(long_side, MAX_SIDE), retry):
            image, scale = _resized(image_bgr, side / long_side)
            boxes, _ = self._yunet.detect(image)
            if len(boxes):
                boxes[:, :4] /= scale
                return boxes
        return _no_faces()[0]


def _resized(image_bgr: np.ndarray, scale: float) -> tuple[np.ndarray, float]:
    """The image resized by about `scale`, and the exact factor of its width."""
    if scale == 1.0:
        return image_bgr, 1.0
    height, width = image_bgr.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    interpolation = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
    resized = cv2.resize(image_bgr, size, interpolation=interpolation)
    return resized, resized.shape[1] / width
