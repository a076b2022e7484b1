"""Component measures on real LFW photos with controlled changes (issue 16)."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from fiqa_cli.choices import CENTRAL_FACE
from fiqa_cli.runtime import measures as measures_module
from fiqa_cli.runtime.align import align_face
from fiqa_cli.runtime.detect import Detector, Face, create_detector
from fiqa_cli.runtime.face_choice import chosen_face_index
from fiqa_cli.runtime.measure_kinds import (
    GEOMETRIC,
    MEASURE_NAMES,
    MEASURES,
    NOT_ASSESSED,
    Measure,
)
from fiqa_cli.runtime.measures import measure_face, ofiq_score
from fiqa_cli.runtime.mesh_measures import MESH_MEASURES, mesh_measures

PHOTOS = ("Aaron_Peirsol/Aaron_Peirsol_0001.jpg", "Abdullah/Abdullah_0001.jpg")
# benchmarks/pose_estimates.py, SCRFD 2.5g, 40 LFW photos rotated by 5-20 degrees: roll
# error p95 4.0, max 6.6 degrees.
ROLL_ERROR = 6.6


@pytest.fixture(scope="module")
def detector(shared_dir: Path) -> Detector:
    return create_detector("scrfd", shared_dir / "models" / "scrfd_2.5g_bnkps.onnx")


def measured(image: np.ndarray, detector: Detector) -> tuple[Face, dict[str, Measure]]:
    faces = detector.detect(image)
    face = faces[chosen_face_index(faces, image.shape[:2], CENTRAL_FACE)]
    return face, measure_face(image, face, faces, align_face(image, face.landmarks))


def photo(lfw_images: Path, name: str) -> np.ndarray:
    return cv2.imread(str(lfw_images / name))


@pytest.mark.parametrize("name", PHOTOS)
def test_rotation_turns_the_roll_by_its_angle(lfw_images, detector, name):
    image = photo(lfw_images, name)
    height, width = image.shape[:2]
    turn = cv2.getRotationMatrix2D((width / 2, height / 2), 15, 1.0)  # counter-clockwise
    turned = cv2.warpAffine(image, turn, (width, height), borderMode=cv2.BORDER_REPLICATE)
    before = measured(image, detector)[1]["head_roll"].value
    after = measured(turned, detector)[1]["head_roll"].value
    assert after == pytest.approx(before - 15, abs=ROLL_ERROR)


def test_half_size_photo_halves_the_inter_eye_distance(lfw_images, detector):
    large = cv2.resize(photo(lfw_images, PHOTOS[0]), None, fx=2, fy=2)
    small = cv2.resize(large, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    ied_large = measured(large, detector)[1]["inter_eye_distance"]
    ied_small = measured(small, detector)[1]["inter_eye_distance"]
    assert ied_small.value / ied_large.value == pytest.approx(0.5, abs=0.03)
    assert ied_small.score < ied_large.score


def test_second_face_beside_the_first_lowers_single_face(lfw_images, detector):
    one = photo(lfw_images, PHOTOS[0])
    two = np.hstack([one, photo(lfw_images, PHOTOS[1])])
    assert measured(one, detector)[1]["single_face"].score == 100
    single = measured(two, detector)[1]["single_face"]
    assert single.value > 0.8  # two faces of about the same size
    assert single.score < 20


def test_under_exposure_lowers_luminance_and_raises_dark_pixels(lfw_images, detector):
    image = photo(lfw_images, PHOTOS[0])
    dark = (image.astype(np.float32) * 0.2).astype(np.uint8)
    face = measured(image, detector)[0]
    crop = align_face(dark, face.landmarks)  # same geometry: only the light changes
    normal = measured(image, detector)[1]
    under = measure_face(dark, face, [face], crop)
    assert under["luminance_mean"].value < normal["luminance_mean"].value / 4
    assert under["luminance_mean"].score < 10 < normal["luminance_mean"].score
    assert under["under_exposure"].value > 0.9
    assert under["under_exposure"].score < normal["under_exposure"].score
    assert under["dynamic_range"].value < normal["dynamic_range"].value


def test_blur_lowers_sharpness(lfw_images, detector):
    image = photo(lfw_images, PHOTOS[0])
    face = measured(image, detector)[0]
    blurred = cv2.GaussianBlur(image, (0, 0), 2)
    sharp = measure_face(image, face, [face], align_face(image, face.landmarks))["sharpness"]
    soft = measure_face(blurred, face, [face], align_face(blurred, face.landmarks))["sharpness"]
    assert soft.score < sharp.score - 20


def test_face_cut_off_by_the_border_is_not_assessed(lfw_images, detector):
    image = photo(lfw_images, PHOTOS[0])
    face = measured(image, detector)[0]
    cut = int(face.landmarks[0, 0]) + 2  # the image-left eye falls outside
    shifted = replace(face, landmarks=face.landmarks - [cut, 0], bbox=face.bbox - [cut, 0] * 2)
    measures = measure_face(image[:, cut:], shifted, [shifted], None)
    assert all(m == Measure(None, NOT_ASSESSED) for m in measures.values())


def test_given_crop_has_no_geometry_but_its_light(lfw_images, detector):
    image = photo(lfw_images, PHOTOS[0])
    face = measured(image, detector)[0]
    crop = align_face(image, face.landmarks)
    # without a mesh (tests/test_mesh_measures.py)
    measures = measure_face(crop, None, [], crop, file_quality=90)
    assert list(measures) == list(MEASURE_NAMES)
    for name, measure in measures.items():
        if name in GEOMETRIC or name in MESH_MEASURES:
            assert measure == Measure(None, NOT_ASSESSED), name
        else:
            assert 0 <= measure.score <= 100 and measure.value is not None, name


def test_every_measure_computed_is_one_record(lfw_images, detector):
    """The measures computed (by their geometric, photometric, file and mesh parts) are exactly the
    records of MEASURES, each in the part its record says: a measure computed without a
    record would never reach a column, a profile or a reason."""
    image = photo(lfw_images, PHOTOS[0])
    face = measured(image, detector)[0]
    height, width = image.shape[:2]
    geometric = measures_module._geometric(face, [face], width, height, None)
    crop = align_face(image, face.landmarks)
    geometric |= measures_module._background(image, face.landmarks)
    photometric = measures_module._photometric(image, face.landmarks, crop)
    photometric |= measures_module._compression(90)
    assert set(geometric) == GEOMETRIC
    assert set(mesh_measures(image, None)) == set(MESH_MEASURES)
    assert set(photometric) == set(MEASURE_NAMES) - GEOMETRIC - set(MESH_MEASURES)
    assert len(MEASURE_NAMES) == len(MEASURES)  # no name twice
    for kind in MEASURES:
        assert kind.unit and kind.low_score and (kind.too_low or kind.too_high), kind.name


def test_ofiq_mapping_constants():
    # OFIQ's inter-eye distance: Q(50) 27, Q(70) 50, Q(90) 73, Q(120) 92.
    assert [ofiq_score(x, x0=70, w=20) for x in (50, 70, 90, 120)] == [27, 50, 73, 92]
    # Natural colour's inverse sigmoid: 100 at distance 0.
    assert ofiq_score(0, h=200, a=1, s=-1, x0=0, w=10) == 100
    # Under-exposure: 100 up to a half of dark pixels, 52 at 0.9.
    under = [ofiq_score(x, h=120, a=0.832, s=-1, x0=0.92, w=0.05) for x in (0.5, 0.9)]
    assert under == [100, 52]


def with_background(image: np.ndarray, face: Face, background: np.ndarray) -> np.ndarray:
    """`image` with everything outside the face's box taken from `background`."""
    x1, y1, x2, y2 = face.bbox.astype(int)
    edited = background.copy()
    edited[y1:y2, x1:x2] = image[y1:y2, x1:x2]
    return edited


def test_flat_background_is_uniform_a_textured_one_is_not(lfw_images, detector):
    image = photo(lfw_images, PHOTOS[0])
    face = measured(image, detector)[0]
    crop = align_face(image, face.landmarks)
    flat = with_background(image, face, np.full_like(image, (90, 140, 200)))
    # a real texture: another LFW photo, its face and all, stretched over the frame
    texture = cv2.resize(photo(lfw_images, PHOTOS[1]), image.shape[1::-1], fx=0, fy=0)
    textured = with_background(image, face, np.tile(texture[::4, ::4], (4, 4, 1)))
    scores = [
        measure_face(edited, face, [face], crop)["background_uniformity"]
        for edited in (flat, image, textured)
    ]
    assert scores[0].value < 5 and scores[0].score >= 95
    assert scores[0].score > scores[1].score > scores[2].score
    assert scores[2].score < scores[0].score - 50


def test_face_filling_the_photo_leaves_no_background_to_judge(lfw_images, detector):
    image = photo(lfw_images, PHOTOS[0])
    face = measured(image, detector)[0]
    x1, y1, x2, y2 = face.bbox.astype(int)
    close = cv2.resize(image[y1:y2, x1:x2], None, fx=3, fy=3)
    measures = measured(close, detector)[1]
    assert measures["background_uniformity"] == Measure(None, NOT_ASSESSED)
    assert measures["luminance_variance"].score > 0  # the face itself is still measured


def test_lower_contrast_lowers_luminance_variance(lfw_images, detector):
    image = photo(lfw_images, PHOTOS[1])
    face = measured(image, detector)[0]
    mean = image.mean()
    variances = []
    for gain in (1.0, 0.5, 0.15):
        edited = np.clip((image - mean) * gain + mean, 0, 255).astype(np.uint8)
        crop = align_face(edited, face.landmarks)
        variances.append(measure_face(edited, face, [face], crop)["luminance_variance"])
    values = [each.value for each in variances]
    # variance scales with the square of the gain (luminance is not linear in the pixel values)
    assert values[0] > values[1] > values[2] > 0
    assert values[2] / values[0] < 0.1
    assert variances[0].score > variances[1].score > variances[2].score


def test_luminance_variance_mapping():
    """OFIQ's 100 sin(pi 60v / (60v + 1)): 100 at 1/60, 0 for a flat face, 66 at 0.005."""
    assert [measures_module.luminance_variance_score(v) for v in (0, 0.005, 1 / 60)] == [0, 66, 100]


def test_the_readme_says_which_measures_are_estimates():
    """The README's table of measures follows MEASURES: a measure added, or one whose
    `estimated` changes, must change what users read."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    rows = {
        line.split("|")[1].strip(): [
            word for word in re.findall(r"[a-z_]+", line.split("|")[2]) if word in MEASURE_NAMES
        ]
        for line in readme.splitlines()
        if line.startswith(("| OFIQ's definition |", "| estimates ("))
    }
    ofiq, estimated = rows.values()
    assert ofiq == [kind.name for kind in MEASURES if not kind.estimated]
    assert sorted(estimated) == sorted(kind.name for kind in MEASURES if kind.estimated)


def test_the_background_pixels_from_the_photo_are_those_each_pixel_maps_into_it():
    """The corner shortcut and the broadcast map agree with mapping every region pixel into
    the photo, for maps that leave the region wholly, partly and not at all in the photo."""
    width, height = measures_module._BACKGROUND_SIZE
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    rng = np.random.default_rng(0)
    shortcuts = partial = 0
    for _ in range(400):
        angle, scale = rng.uniform(-0.5, 0.5), rng.uniform(0.2, 3)
        to_photo = np.array(
            [[scale * np.cos(angle), -scale * np.sin(angle), rng.uniform(-300, 300)],
             [scale * np.sin(angle), scale * np.cos(angle), rng.uniform(-300, 300)]]
        )  # fmt: skip
        shape = (int(rng.integers(50, 900)), int(rng.integers(50, 900)))
        from_x = to_photo[0, 0] * xs + to_photo[0, 1] * ys + to_photo[0, 2]
        from_y = to_photo[1, 0] * xs + to_photo[1, 1] * ys + to_photo[1, 2]
        expected = (from_x > -0.5) & (from_x < shape[1] - 0.5)
        expected &= (from_y > -0.5) & (from_y < shape[0] - 0.5)
        inside = measures_module._from_photo(to_photo, shape)
        shortcuts += inside is None
        partial += inside is not None and inside.any() and not inside.all()
        np.testing.assert_array_equal(
            np.ones_like(expected) if inside is None else inside, expected
        )
    assert shortcuts >= 5 and partial >= 100
