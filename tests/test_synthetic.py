"""Synthetic capture conditions: degradations get measurably worse with strength, and booth
close-ups frame the face as asked."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from closeups import BOOTH_FRAMINGS, BOOTH_SIZE, booth_closeup, central_face, crop_distance

from fiqa_cli.runtime.boxes import transform_points
from fiqa_cli.runtime.degrade import (
    DEGRADATIONS,
    OCCLUDER_GREY,
    degradation_parameter,
    degradation_strength,
    degrade,
)
from fiqa_cli.runtime.detect import Face

STRENGTHS = (0.0, 0.25, 0.5, 0.75, 1.0)
# ArcFace 5-point template of the 112x112 crop
TEMPLATE = np.array(
    [[38.29, 51.70], [73.53, 51.50], [56.03, 71.74], [41.55, 92.37], [70.73, 92.20]], np.float32
)


@pytest.fixture(scope="module")
def faces(lfw_images: Path) -> list[np.ndarray]:
    """112x112 BGR centres of a few LFW photos: the face, from brow to chin."""
    paths = sorted(lfw_images.glob("*/*.jpg"))[::700][:4]
    return [cv2.imread(str(path))[69:181, 69:181].copy() for path in paths]


def _sharpness(image: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var())


def _psnr(image: np.ndarray, original: np.ndarray) -> float:
    mse = np.mean((image.astype(float) - original) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255**2 / mse))


# What each kind lowers, from (degraded image, original): sharpness for the kinds that remove
# detail, brightness for under-exposure, fidelity (PSNR) for those that add errors.
SIGNALS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "blur": lambda image, _: _sharpness(image),
    "downscale": lambda image, _: _sharpness(image),
    "jpeg": _psnr,
    "noise": _psnr,
    "underexposure": lambda image, _: float(image.mean()),
    "occlusion": _psnr,
}


@pytest.mark.parametrize("kind", DEGRADATIONS)
def test_signal_falls_with_strength(faces: list[np.ndarray], kind: str) -> None:
    for face in faces:
        degraded = [degrade(face, kind, s, rng=np.random.default_rng(0)) for s in STRENGTHS]
        values = [SIGNALS[kind](image, face) for image in degraded]
        assert all(a > b for a, b in zip(values, values[1:], strict=False)), (kind, values)
        assert np.array_equal(degraded[0], face)


@pytest.mark.parametrize("kind", DEGRADATIONS)
def test_weak_degradations_are_nearly_the_original(faces: list[np.ndarray], kind: str) -> None:
    for face in faces:
        slight = degrade(face, kind, 0.02, rng=np.random.default_rng(0))
        assert _psnr(slight, face) > 28, kind  # occlusion: one row of 112 covered


@pytest.mark.parametrize("kind", DEGRADATIONS)
def test_shape_and_dtype_are_kept(kind: str) -> None:
    image = np.random.default_rng(1).integers(0, 256, (90, 130, 3), dtype=np.uint8)
    for strength in STRENGTHS:
        degraded = degrade(image, kind, strength)
        assert degraded.shape == image.shape and degraded.dtype == np.uint8
        assert degraded is not image


def test_parameters_are_the_documented_physical_values() -> None:
    assert degradation_parameter("blur", 0.5) == pytest.approx(1.5)
    assert degradation_parameter("jpeg", 1.0) == pytest.approx(5)
    assert degradation_parameter("underexposure", 1.0) == pytest.approx(0.25)
    for kind in DEGRADATIONS:
        parameter = degradation_parameter(kind, 0.3)
        assert degradation_strength(kind, parameter) == pytest.approx(0.3)


def test_underexposure_scales_and_occlusion_covers_the_bottom(faces: list[np.ndarray]) -> None:
    face = faces[0]
    darker = degrade(face, "underexposure", 1.0)
    assert np.abs(darker.astype(int) - (face * 0.25).astype(int)).max() == 0
    covered = degrade(face, "occlusion", 1.0)
    assert np.all(covered[56:] == OCCLUDER_GREY)
    assert np.array_equal(covered[:56], face[:56])


def test_jpeg_encodes_luma_from_the_stated_channel_order(faces: list[np.ndarray]) -> None:
    bgr = faces[0]
    rgb = np.ascontiguousarray(bgr[..., ::-1])
    from_rgb = degrade(rgb, "jpeg", 0.8, color_order="RGB")
    assert np.array_equal(from_rgb[..., ::-1], degrade(bgr, "jpeg", 0.8))
    # the same pixels read as if BGR give other chroma, hence other artefacts
    assert not np.array_equal(from_rgb, degrade(rgb, "jpeg", 0.8))


def test_noise_repeats_with_a_seeded_generator(faces: list[np.ndarray]) -> None:
    first, second = (degrade(faces[0], "noise", 0.5, rng=np.random.default_rng(7)) for _ in "ab")
    assert np.array_equal(first, second)
    residual = first.astype(float) - faces[0]
    unclipped = (faces[0] > 40) & (faces[0] < 215)
    assert residual[unclipped].std() == pytest.approx(degradation_parameter("noise", 0.5), 0.1)


def test_bad_arguments_are_refused() -> None:
    image = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="unknown degradation"):
        degrade(image, "fog", 0.5)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        degrade(image, "blur", 1.5)
    with pytest.raises(ValueError, match="uint8"):
        degrade(image.astype(np.float32), "blur", 0.5)
    with pytest.raises(ValueError, match="BGR or RGB"):
        degrade(image, "jpeg", 0.5, color_order="YUV")


@pytest.mark.parametrize("framing", BOOTH_FRAMINGS)
def test_booth_closeup_frames_the_face_box(framing: float) -> None:
    photo = np.zeros((250, 250, 3), np.uint8)
    photo[70:180, 90:170] = 255  # an off-centre face box, taller than wide
    # pixel centres sit at integer coordinates, so the block's edges lie half a pixel out
    box = np.array([89.5, 69.5, 169.5, 179.5])
    closeup, to_closeup = booth_closeup(photo, box, framing)
    width, height = BOOTH_SIZE
    assert closeup.shape == (height, width, 3)
    rows = np.flatnonzero(closeup[:, width // 2, 0] > 127)
    columns = np.flatnonzero(closeup[height // 2, :, 0] > 127)
    assert len(rows) == pytest.approx(framing * height, abs=2)
    assert (rows[0] + rows[-1]) / 2 == pytest.approx(height / 2, abs=1.5)
    assert (columns[0] + columns[-1]) / 2 == pytest.approx(width / 2, abs=1.5)
    corners = transform_points(to_closeup, box.reshape(2, 2))
    assert corners[1, 1] - corners[0, 1] == pytest.approx(framing * height)
    assert corners.mean(axis=0) == pytest.approx([width / 2, height / 2])


def test_crop_distance_is_measured_in_aligned_crop_pixels() -> None:
    assert crop_distance(TEMPLATE, TEMPLATE) == pytest.approx(0, abs=1e-3)
    shifted = TEMPLATE + [0, 2]
    assert crop_distance(TEMPLATE, shifted) == pytest.approx(2, abs=0.05)
    # the same offset on a face four times larger is a quarter of it in the crop
    large = TEMPLATE * 4 + 300
    assert crop_distance(large, large + [0, 2]) == pytest.approx(0.5, abs=0.02)


def test_central_face_is_nearest_the_image_centre() -> None:
    def face_at(x: float, y: float) -> Face:
        return Face(np.array([x - 20, y - 20, x + 20, y + 20]), 0.9, TEMPLATE)

    faces = [face_at(40, 40), face_at(130, 120), face_at(200, 125)]
    assert central_face(faces, (250, 250, 3)) is faces[1]
    assert central_face(faces, (250, 400, 3)) is faces[2]
    assert central_face([], (250, 250, 3)) is None
