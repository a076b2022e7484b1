"""One face path: scoring, evaluation's sample preparation and training's crop cache refuse
and accept the same faces (fiqa_cli.runtime.faces)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from fiqa_cli.choices import LARGEST_FACE
from fiqa_cli.cli import main
from fiqa_cli.evaluation.samples import Sample, prepare_faces
from fiqa_cli.export.image_folder import AlignedCropCache
from fiqa_cli.runtime.decode import read_image
from fiqa_cli.runtime.detect import create_detector
from fiqa_cli.runtime.faces import CUT_OFF_MESSAGE, aligned_face


@pytest.fixture(scope="module")
def photos(lfw_images: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A whole LFW photo and the same photo cut just below the eyes (nose and mouth outside)."""
    folder = tmp_path_factory.mktemp("face_path") / "Someone"
    folder.mkdir()
    source = sorted(lfw_images.glob("*/*_0001.jpg"))[0]
    image = read_image(source)
    eyes_y = int(create_detector("mtcnn").detect(image)[0].landmarks[:2, 1].max())
    whole, cut = folder / "whole.png", folder / "cut.png"
    cv2.imwrite(str(whole), image)
    cv2.imwrite(str(cut), image[: eyes_y + 12])
    return {"whole": whole, "cut": cut}


def test_score_evaluation_and_training_agree_on_a_face_cut_off_by_the_border(
    photos: dict[str, Path], random_onnx_model: Path, tmp_path: Path
) -> None:
    detector = create_detector("mtcnn")
    cut_image = read_image(photos["cut"])
    assert detector.detect(cut_image), "the cut photo must still show a detected face"
    assert aligned_face(cut_image, detector, LARGEST_FACE) == CUT_OFF_MESSAGE

    result = CliRunner().invoke(
        main,
        ["score", *map(str, photos.values()), "--model", str(random_onnx_model),
         "--detector", "mtcnn", "--quiet"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    statuses = {
        Path(row["path"]).stem: row["status"] for row in csv.DictReader(io.StringIO(result.output))
    }
    assert statuses == {"whole": "ok", "cut": "no_face"}

    samples = [Sample(path, "Someone") for path in photos.values()]
    evaluated, positions = prepare_faces(samples, detector, lambda message: None)
    assert [sample.path.stem for sample in evaluated.samples] == ["whole"]
    assert positions.tolist() == [0, -1]

    cache = AlignedCropCache(tmp_path / "cache", "mtcnn")
    assert cache.crop_path(photos["whole"]) is not None
    assert cache.crop_path(photos["cut"]) is None


def test_training_reads_crops_as_scoring_decodes_them(tmp_path: Path) -> None:
    """A 16-bit RGBA 112x112 crop given to training looks as it does to `fiqa score`."""
    from fiqa_cli.export.image_folder import read_crop_rgb

    rng = np.random.default_rng(0)
    bgr = rng.integers(0, 256, (112, 112, 3), dtype=np.uint8)
    deep = np.dstack([bgr.astype(np.uint16) * 257, np.full((112, 112), 65535, np.uint16)])
    path = tmp_path / "deep_alpha.png"
    cv2.imwrite(str(path), deep)
    np.testing.assert_array_equal(
        read_crop_rgb(path), cv2.cvtColor(read_image(path), cv2.COLOR_BGR2RGB)
    )
    np.testing.assert_array_equal(read_crop_rgb(path), bgr[..., ::-1])
