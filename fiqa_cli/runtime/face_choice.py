"""Which detected face stands for a photo when only one may.

`largest` suits capture stations and ID photos, where the subject fills the frame. `central`
suits datasets cut around their labelled subject, as LFW is, where a bystander is sometimes
the larger face (0.8% of the LFW devtrain photos aligned for training and validation; 7 of
George W Bush's 530): taking the largest face would give those photos another person's label.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fiqa_cli.choices import CENTRAL_FACE, LARGEST_FACE
from fiqa_cli.runtime.detect import Face


def chosen_face_index(faces: Sequence[Face], image_size: tuple[int, int], choice: str) -> int:
    """Index in `faces` (largest first, as detectors return them, and not empty) of the face
    that `choice` picks; `image_size` is (height, width)."""
    if not faces:
        raise ValueError("no faces to choose from")
    if choice == LARGEST_FACE:
        return 0
    if choice != CENTRAL_FACE:
        raise ValueError(f"unknown face choice {choice!r}")
    height, width = image_size
    centres = np.array([(face.bbox[:2] + face.bbox[2:]) / 2 for face in faces])
    distances = np.hypot(centres[:, 0] - width / 2, centres[:, 1] - height / 2)
    return int(np.argmin(distances))  # the first, i.e. larger, face on a tie
