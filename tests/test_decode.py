"""read_image: every kind of input file gives an upright 8-bit BGR image or a DecodeError."""

from __future__ import annotations

import io
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from fiqa_cli.runtime.decode import DecodeError, read_image

EXIF_ORIENTATION = 0x0112
ROTATE_90_CW = 6  # the stored pixels must be turned 90 degrees clockwise to be upright


def _two_tone(height: int = 40, width: int = 60) -> np.ndarray:
    """RGB image, red top half and blue bottom half, so orientation is checkable."""
    rgb = np.zeros((height, width, 3), np.uint8)
    rgb[: height // 2] = (255, 0, 0)
    rgb[height // 2 :] = (0, 0, 255)
    return rgb


def _jpeg_bytes(rgb: np.ndarray, **save_args) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG", quality=95, **save_args)
    return buffer.getvalue()


def test_jpeg_is_bgr(tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    path.write_bytes(_jpeg_bytes(_two_tone()))
    image = read_image(path)
    assert image.shape == (40, 60, 3) and image.dtype == np.uint8
    assert image[5, 30, 2] > 200 and image[5, 30, 0] < 50  # red top, in BGR order


def test_exif_rotation_is_applied(tmp_path: Path) -> None:
    upright = _two_tone()
    stored = np.rot90(upright, k=1)  # counter-clockwise; EXIF 6 turns it back clockwise
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = ROTATE_90_CW
    path = tmp_path / "rotated.jpg"
    path.write_bytes(_jpeg_bytes(np.ascontiguousarray(stored), exif=exif.tobytes()))
    image = read_image(path)
    assert image.shape == (40, 60, 3)
    assert image[5, 30, 2] > 200 and image[35, 30, 0] > 200


def test_cmyk_jpeg(tmp_path: Path) -> None:
    path = tmp_path / "cmyk.jpg"
    buffer = io.BytesIO()
    Image.fromarray(_two_tone()).convert("CMYK").save(buffer, "JPEG", quality=95)
    path.write_bytes(buffer.getvalue())
    image = read_image(path)
    assert image.shape == (40, 60, 3)
    assert image[5, 30, 2] > 200 and image[35, 30, 0] > 200


def test_grayscale_png_gets_three_channels(tmp_path: Path) -> None:
    path = tmp_path / "grey.png"
    cv2.imwrite(str(path), np.full((10, 12), 77, np.uint8))
    image = read_image(path)
    assert image.shape == (10, 12, 3) and np.all(image == 77)


def test_16_bit_png_is_scaled_to_8_bit(tmp_path: Path) -> None:
    path = tmp_path / "deep.png"
    cv2.imwrite(str(path), np.full((10, 12, 3), [0, 32896, 65535], np.uint16))
    image = read_image(path)
    assert image.dtype == np.uint8
    assert image[0, 0].tolist() == [0, 128, 255]


def test_alpha_is_composited_on_white(tmp_path: Path) -> None:
    bgra = np.zeros((10, 12, 4), np.uint8)
    bgra[:, :6] = (10, 20, 30, 255)  # opaque left half
    bgra[:, 6:] = (10, 20, 30, 0)  # transparent right half
    path = tmp_path / "alpha.png"
    cv2.imwrite(str(path), bgra)
    image = read_image(path)
    assert image.shape == (10, 12, 3)
    assert image[0, 0].tolist() == [10, 20, 30]
    assert image[0, 11].tolist() == [255, 255, 255]


def test_odd_file_names(tmp_path: Path) -> None:
    path = tmp_path / 'Zoë, "Ann" O\'Brien ñ 写真.jpg'
    path.write_bytes(_jpeg_bytes(_two_tone()))
    assert read_image(path).shape == (40, 60, 3)


def test_jpeg_with_trailing_data_is_not_truncated(tmp_path: Path) -> None:
    path = tmp_path / "trailer.jpg"
    path.write_bytes(_jpeg_bytes(_two_tone()) + b"camera maker trailer")
    assert read_image(path).shape == (40, 60, 3)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b"this is a text file, not a photo\n", "not a decodable image"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "not a decodable image"),
    ],
)
def test_undecodable_content(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.jpg"
    path.write_bytes(content)
    with pytest.raises(DecodeError, match=message):
        read_image(path)


def test_truncated_jpeg(tmp_path: Path) -> None:
    data = _jpeg_bytes(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    path = tmp_path / "truncated.jpg"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DecodeError, match="truncated"):
        read_image(path)


def test_corrupt_jpeg_header(tmp_path: Path) -> None:
    data = bytearray(_jpeg_bytes(_two_tone()))
    data[2:200] = bytes(198)  # wipe the header segments, keep the JPEG magic and the end
    path = tmp_path / "corrupt.jpg"
    path.write_bytes(bytes(data))
    with pytest.raises(DecodeError, match="corrupt image header"):
        read_image(path)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(DecodeError, match="not found"):
        read_image(tmp_path / "missing.jpg")
    with pytest.raises(DecodeError, match="directory"):
        read_image(tmp_path)


@pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0,
    reason="running as root: file permissions do not block reading",
)
def test_unreadable_permission(tmp_path: Path) -> None:
    path = tmp_path / "locked.jpg"
    path.write_bytes(_jpeg_bytes(_two_tone()))
    path.chmod(0)
    with pytest.raises(DecodeError, match="permission denied"):
        read_image(path)
