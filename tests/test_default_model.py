"""The embedded default model: present, documented, and a quality model rather than noise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fiqa_cli import model_contract as contract
from fiqa_cli.align import align_face
from fiqa_cli.decode import read_image
from fiqa_cli.detect import create_detector
from fiqa_cli.paths import default_model_path, models_dir
from fiqa_cli.quality_model import QualityModel
from fiqa_cli.synthetic import degrade

CPU = ["CPUExecutionProvider"]


@pytest.fixture(scope="module")
def default_model() -> QualityModel:
    return QualityModel(default_model_path(), CPU)


def test_default_model_carries_its_metadata(default_model: QualityModel) -> None:
    metadata = default_model.metadata
    assert metadata[contract.META_ARCHITECTURE] == "mobilefacenet"
    assert metadata[contract.META_COLOR_ORDER] == "RGB"
    assert metadata[contract.META_ALIGNMENT] == contract.ALIGNMENT_TEMPLATE
    assert int(metadata[contract.META_EMBEDDING_SIZE]) == 512
    assert len(metadata[contract.META_SOURCE_SHA256]) == 64
    assert default_model_path().stat().st_size < 20 * 1024 * 1024
    card = (models_dir() / "README.md").read_text()
    assert metadata[contract.META_SOURCE_SHA256] in card, "the model card names another model"


def test_sharp_faces_score_above_their_blurred_copies(
    default_model: QualityModel, lfw_images: Path
) -> None:
    detector = create_detector("mtcnn", providers=CPU)
    photos = sorted(lfw_images.glob("*/*_0001.jpg"))[::400][:8]
    crops = []
    for photo in photos:
        image = read_image(photo)
        crops.append(align_face(image, detector.detect(image)[0].landmarks))
    sharp = default_model.predict(crops)
    blurred = default_model.predict([degrade(crop, "blur", 1.0) for crop in crops])
    assert np.all(sharp > blurred), list(zip(sharp, blurred, strict=True))
