"""The embedded default model: present, documented, and a quality model rather than noise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from fiqa_cli import model_contract as contract
from fiqa_cli.cli import main
from fiqa_cli.paths import default_model_path, models_dir
from fiqa_cli.runtime.align import align_face
from fiqa_cli.runtime.decode import read_image
from fiqa_cli.runtime.degrade import degrade
from fiqa_cli.runtime.detect import create_detector
from fiqa_cli.runtime.quality_model import QualityModel

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


@pytest.fixture(scope="module")
def sharp_and_blurred(default_model: QualityModel, lfw_images: Path) -> tuple[np.ndarray, ...]:
    """Qualities of 8 aligned LFW faces and of their copies blurred with sigma 3 px."""
    detector = create_detector("mtcnn", providers=CPU)
    photos = sorted(lfw_images.glob("*/*_0001.jpg"))[::400][:8]
    crops = []
    for photo in photos:
        image = read_image(photo)
        crops.append(align_face(image, detector.detect(image)[0].landmarks))
    blurred = [degrade(crop, "blur", 1.0) for crop in crops]
    return default_model.predict(crops), default_model.predict(blurred)


def test_blur_lowers_quality_on_average(sharp_and_blurred: tuple[np.ndarray, ...]) -> None:
    sharp, blurred = sharp_and_blurred
    assert np.median(sharp - blurred) > 0 and sharp.mean() > blurred.mean()


def test_every_sharp_face_scores_above_its_blurred_copy(
    sharp_and_blurred: tuple[np.ndarray, ...],
) -> None:
    sharp, blurred = sharp_and_blurred
    assert np.all(sharp > blurred), list(zip(sharp, blurred, strict=True))


def test_default_model_names_its_data_terms_where_users_see_them(
    default_model: QualityModel,
) -> None:
    """v11 is trained on CelebA: its non-commercial terms are in its metadata, which
    `fiqa doctor` prints, and in the README."""
    terms = default_model.metadata[contract.META_DATA_TERMS]
    assert "CelebA" in terms and "non-commercial" in terms
    assert f"trained on: {terms}" in CliRunner().invoke(main, ["doctor"]).output
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert "inherits CelebA's non-commercial terms" in readme
