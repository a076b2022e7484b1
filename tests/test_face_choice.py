"""Which face stands for a photo: the largest, or the one the photo was cut around.

The real cases are LFW photos of George W Bush in which a bystander's face is larger than his
(or, with MTCNN, detected first): with `largest` they carried another person's face under his
name into training and evaluation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import skip_without_shared_data

from fiqa_cli.choices import CENTRAL_FACE, LARGEST_FACE
from fiqa_cli.evaluation.samples import identity_samples, prepare_faces
from fiqa_cli.runtime.detect import Face, create_detector
from fiqa_cli.runtime.face_choice import chosen_face_index

# LFW photos are 250x250, cut around the labelled face.
LFW_CENTRE = np.array([125.0, 125.0])
BYSTANDER_PHOTOS = ("George_W_Bush_0276.jpg", "George_W_Bush_0307.jpg", "George_W_Bush_0477.jpg")


def _face(x1: float, y1: float, x2: float, y2: float) -> Face:
    return Face(np.array([x1, y1, x2, y2]), 0.99, np.zeros((5, 2)))


def test_central_is_the_face_nearest_the_image_centre() -> None:
    faces = [_face(0, 0, 120, 120), _face(80, 80, 160, 160), _face(150, 150, 190, 190)]
    assert chosen_face_index(faces, (240, 240), LARGEST_FACE) == 0
    assert chosen_face_index(faces, (240, 240), CENTRAL_FACE) == 1
    # Height first: in a wide image the middle of the width counts.
    wide = [_face(0, 0, 100, 100), _face(350, 0, 450, 100)]
    assert chosen_face_index(wide, (100, 800), CENTRAL_FACE) == 1
    assert chosen_face_index(wide, (800, 100), CENTRAL_FACE) == 0


def test_central_distance_is_euclidean() -> None:
    """Offsets from the centre of a 200x200 image where the Euclidean order differs from
    both |dx| + |dy| and max(|dx|, |dy|): the larger face 30 px to the right (L1 30, L2 30)
    against a smaller one 21 px up and left (L1 42, L2 29.7); then 25 px right (L2 25,
    max 25) against 20 px up and left (L2 28.3, max 20)."""
    larger = _face(100, 70, 160, 130)  # centre (130, 100)
    diagonal = _face(64, 64, 94, 94)  # centre (79, 79)
    assert chosen_face_index([larger, diagonal], (200, 200), CENTRAL_FACE) == 1
    nearer = _face(95, 70, 155, 130)  # centre (125, 100)
    less_diagonal = _face(65, 65, 95, 95)  # centre (80, 80)
    assert chosen_face_index([nearer, less_diagonal], (200, 200), CENTRAL_FACE) == 0


def test_equal_distances_keep_the_larger_face() -> None:
    # Both centres lie exactly 50 px from the image centre (100, 80): a real tie.
    faces = [_face(20, 50, 80, 110), _face(135, 65, 165, 95)]
    centres = [(face.bbox[:2] + face.bbox[2:]) / 2 for face in faces]
    assert [np.hypot(*(centre - (100, 80))) for centre in centres] == [50.0, 50.0]
    assert chosen_face_index(faces, (160, 200), CENTRAL_FACE) == 0
    # Moved a pixel nearer, the smaller face wins: the tie, not the size, decided above.
    nearer = [faces[0], _face(134, 65, 164, 95)]
    assert chosen_face_index(nearer, (160, 200), CENTRAL_FACE) == 1


def test_no_faces_or_an_unknown_choice_is_an_error() -> None:
    with pytest.raises(ValueError, match="no faces"):
        chosen_face_index([], (10, 10), CENTRAL_FACE)
    with pytest.raises(ValueError, match="unknown face choice"):
        chosen_face_index([_face(0, 0, 5, 5)], (10, 10), "all")


@pytest.fixture(scope="module")
def bush_photos(lfw_images: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bystander photos and two ordinary ones, as ROOT/IDENTITY/*.jpg."""
    folder = tmp_path_factory.mktemp("bystanders") / "George_W_Bush"
    folder.mkdir()
    for name in (*BYSTANDER_PHOTOS, "George_W_Bush_0001.jpg", "George_W_Bush_0002.jpg"):
        source = lfw_images / "George_W_Bush" / name
        if not source.is_file():
            skip_without_shared_data(f"{source} is not in the shared data")
        (folder / name).symlink_to(source)
    return folder.parent


def _box_centres(bboxes: np.ndarray) -> np.ndarray:
    return (bboxes[:, :2] + bboxes[:, 2:]) / 2


def test_evaluation_takes_the_labelled_face_of_lfw_photos(bush_photos: Path) -> None:
    samples = identity_samples(bush_photos, min_images=2, limit_ids=None)
    detector = create_detector("mtcnn")
    largest, _ = prepare_faces(samples, detector, lambda message: None, LARGEST_FACE)
    central, _ = prepare_faces(samples, detector, lambda message: None, CENTRAL_FACE)

    bystander = np.array([sample.path.name in BYSTANDER_PHOTOS for sample in central.samples])
    largest_offset = np.linalg.norm(_box_centres(largest.bboxes) - LFW_CENTRE, axis=1)
    central_offset = np.linalg.norm(_box_centres(central.bboxes) - LFW_CENTRE, axis=1)
    assert np.all(central_offset < 25)
    assert np.all(largest_offset[bystander] > 50)
    # Photos with one face are the same either way.
    np.testing.assert_array_equal(central.crops[~bystander], largest.crops[~bystander])


def test_score_rows_name_the_central_face(bush_photos: Path, random_onnx_model: Path) -> None:
    from click.testing import CliRunner

    from fiqa_cli.cli import main
    from fiqa_cli.runtime.rows import read_rows

    out = bush_photos.parent / "central.csv"
    arguments = ["score", str(bush_photos), "--model", str(random_onnx_model), "--out", str(out)]
    result = CliRunner().invoke(main, [*arguments, "--detector", "mtcnn", "--faces", "central"])
    assert result.exit_code == 0, result.output
    rows = {Path(row["path"]).name: row for row in read_rows(out)}
    assert len(rows) == 5
    for name in BYSTANDER_PHOTOS:
        row = rows[name]
        # The row keeps the face's detection index (as --faces all numbers it): not 0 here.
        assert row["face"] == 1
        centre = np.array([row["x1"] + row["x2"], row["y1"] + row["y2"]]) / 2
        assert np.linalg.norm(centre - LFW_CENTRE) < 25


def test_training_crop_cache_keeps_central_faces_apart(bush_photos: Path, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from fiqa_cli.export.image_folder import AlignedCropCache

    photo = bush_photos / "George_W_Bush" / BYSTANDER_PHOTOS[0]
    largest = AlignedCropCache(tmp_path, "mtcnn").crop_path(photo)
    central = AlignedCropCache(tmp_path, "mtcnn", faces=CENTRAL_FACE).crop_path(photo)
    assert largest.parent.name == "mtcnn" and central.parent.name == "mtcnn-central"
    assert largest.read_bytes() != central.read_bytes()
