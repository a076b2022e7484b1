"""insightface's SCRFD detector, with a padded second pass for faces that fill the frame.

SCRFD was trained on scenes where faces are a fraction of the picture; on booth close-ups
(face 70-90% of the image height) it often finds nothing. Surrounding such an image with a
neutral border shrinks the face relative to the frame and restores detection, so a padded
pass runs only when the plain pass comes back empty.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
from insightface import model_zoo

from fiqa_cli.errors import ModelFileError
from fiqa_cli.runtime.providers import Providers

DETECTION_INPUT_SIZE = (640, 640)
SCORE_THRESHOLD = 0.5
# The padded canvas is this many times the image in each dimension.
_PAD_FACTOR = 2.0
_PAD_VALUE = (127, 127, 127)


class ScrfdModelError(ModelFileError):
    """The file is not an SCRFD detector with five keypoints."""


class ScrfdDetector:
    """`detect` returns boxes (N x 5: x1, y1, x2, y2, score) and landmarks (N x 5 x 2)."""

    def __init__(
        self, model_path: Path, providers: Providers, options: ort.SessionOptions | None = None
    ):
        try:
            model = model_zoo.get_model(str(model_path), providers=providers, sess_options=options)
        except Exception as error:  # insightface raises assorted types for unreadable files
            raise ScrfdModelError(f"{model_path}: cannot load as an ONNX model ({error})") from None
        if getattr(model, "taskname", None) != "detection" or not getattr(model, "use_kps", False):
            raise ScrfdModelError(
                f"{model_path}: not an SCRFD face detector with 5 keypoints "
                "(expected e.g. det_10g.onnx from insightface's buffalo_l pack)"
            )
        # ctx_id >= 0 keeps the providers given above; a negative id would force CPU.
        model.prepare(ctx_id=0, input_size=DETECTION_INPUT_SIZE, det_thresh=SCORE_THRESHOLD)
        self._model = model

    def detect(self, image_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        boxes, landmarks = self._model.detect(image_bgr, input_size=DETECTION_INPUT_SIZE)
        if len(boxes):
            return boxes, landmarks
        return self._detect_padded(image_bgr)

    def _detect_padded(self, image_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        height, width = image_bgr.shape[:2]
        pad_y = round(height * (_PAD_FACTOR - 1) / 2)
        pad_x = round(width * (_PAD_FACTOR - 1) / 2)
        canvas = cv2.copyMakeBorder(
            image_bgr, pad_y, pad_y, pad_x, pad_x, cv2.BORDER_CONSTANT, value=_PAD_VALUE
        )
        boxes, landmarks = self._model.detect(canvas, input_size=DETECTION_INPUT_SIZE)
        offset = np.array([pad_x, pad_y], dtype=np.float32)
        boxes = boxes.copy()
        boxes[:, 0:2] -= offset
        boxes[:, 2:4] -= offset
        return boxes, landmarks - offset
