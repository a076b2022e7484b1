"""Turn an image file into an upright 8-bit BGR array, or say precisely why it cannot be."""

from __future__ import annotations

import os

import cv2
import numpy as np

from fiqa_cli.choices import DEFAULT_MAX_PIXELS
from fiqa_cli.errors import FiqaError
from fiqa_cli.runtime.image_header import HeaderError, ImageHeader, read_header
from fiqa_cli.runtime.input_file import InputFileError, read_input_bytes

# JPEG cannot carry alpha, but it can carry EXIF orientation and CMYK, which IMREAD_COLOR
# handles; other formats are read unchanged so that alpha and 16-bit depth are ours to convert.
_JPEG_MAGIC = b"\xff\xd8"
_JPEG_START_OF_SCAN = b"\xff\xda"
_JPEG_END_OF_IMAGE = b"\xff\xd9"
# Transparent pixels become white, the usual background of an ID photo.
_ALPHA_BACKGROUND = 255.0
# Conversions run a band of rows at a time: a float copy of a whole large image would cost
# more than the decoded image itself.
_BAND_ROWS = 256
# The decoder's buffers may hold 8 bytes for each pixel of the budget, the size of the widest
# ordinary pixel (16-bit RGBA): wider pixels (float TIFF, Radiance, JPEG 2000's int32 samples)
# and tiles or strips besides the image take their share of it.
BUDGET_BYTES_PER_PIXEL = 8
# Each scan of a progressive JPEG is a pass of the decoder over the whole image; ordinary
# encoders write about 10. A file of 1,000 repeated scans (141 bytes each) decoded for minutes.
MAX_JPEG_SCANS = 100

# Why a file does not decode is said in its row; OpenCV's own log lines would only add noise
# on stderr (under -q too).
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


class DecodeError(FiqaError):
    """The file exists as an input but holds no decodable image; the message says why."""


def read_image(path: str | os.PathLike[str], max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read `path` as an HxWx3 uint8 BGR image, upright per its EXIF orientation. An image
    over the budget (more than `max_pixels` pixels, decoder buffers of more than
    BUDGET_BYTES_PER_PIXEL bytes for each of them, a JPEG of more than MAX_JPEG_SCANS scans)
    is refused from its header, before decoding."""
    return decode_image(read_image_bytes(path), max_pixels)


def read_image_bytes(path: str | os.PathLike[str]) -> bytes:
    """The bytes of the image file `path`, for `decode_image`; DecodeError when it cannot be
    read or is empty."""
    # Reading bytes ourselves (not cv2.imread) works for non-ASCII paths on every platform,
    # lets missing files and permission problems be told apart, and never blocks.
    try:
        data = read_input_bytes(path)
    except InputFileError as error:
        raise DecodeError(str(error)) from None
    if not data:
        raise DecodeError("empty file (0 bytes)")
    return data


def decode_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """`read_image` of an image file's bytes."""
    _check_budget(_header(data), max_pixels)
    buffer = np.frombuffer(data, dtype=np.uint8)
    try:
        if data.startswith(_JPEG_MAGIC):
            if _jpeg_is_truncated(data):
                raise DecodeError("truncated JPEG (no end-of-image marker after the image data)")
            image = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
        else:
            image = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
    except cv2.error:  # OpenCV's own checks (its pixel limit, bad parameters in a header)
        image = None
    if image is None or image.size == 0:
        raise DecodeError("not a decodable image (corrupt file or unsupported format)")
    return _to_bgr8(image)


def _header(data: bytes) -> ImageHeader:
    try:
        header = read_header(data)
    except HeaderError as error:
        raise DecodeError(str(error)) from None
    if header is None:
        raise DecodeError("not a decodable image (corrupt file or unsupported format)")
    return header


def _check_budget(header: ImageHeader, max_pixels: int) -> None:
    width, height = header.width, header.height
    if width * height > max_pixels:
        raise DecodeError(
            f"image is {width}x{height} ({width * height / 1e6:.1f} megapixels), over the "
            f"pixel budget of {max_pixels} (--max-pixels)"
        )
    budget_bytes = max_pixels * BUDGET_BYTES_PER_PIXEL
    if header.decoded_bytes > budget_bytes:
        raise DecodeError(
            f"image is {width}x{height} but decoding it takes {header.decoded_bytes / 1e6:.0f} "
            f"MB ({header.pixel_bytes} bytes a pixel, tiles or strips of "
            f"{header.tile_bytes / 1e6:.0f} MB), over the budget of {budget_bytes / 1e6:.0f} MB "
            f"({BUDGET_BYTES_PER_PIXEL} bytes for each pixel of --max-pixels)"
        )
    if header.scans > MAX_JPEG_SCANS:
        raise DecodeError(
            f"JPEG of {header.scans} scans, over the limit of {MAX_JPEG_SCANS} (each scan is "
            "a pass over the whole image; ordinary progressive JPEGs have about 10)"
        )


def _jpeg_is_truncated(data: bytes) -> bool:
    # Entropy-coded data never contains an unstuffed 0xFF marker byte pair, so the last
    # start-of-scan must be followed by an end-of-image marker in a complete file
    # (an EXIF thumbnail's markers come earlier; appended trailers bring their own).
    last_scan = data.rfind(_JPEG_START_OF_SCAN)
    return last_scan < 0 or data.find(_JPEG_END_OF_IMAGE, last_scan) < 0


def _to_bgr8(image: np.ndarray) -> np.ndarray:
    image = _to_uint8(image)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    channels = image.shape[2]
    if channels == 1:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if channels == 2:  # grey + alpha
        return _composite_alpha(cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2BGR), image[:, :, 1])
    if channels == 4:
        return _composite_alpha(image[:, :, :3], image[:, :, 3])
    return np.ascontiguousarray(image[:, :, :3])


def _to_uint8(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        # round(x / 257) for every x, without a float copy of the image (4 bytes a sample).
        return cv2.convertScaleAbs(image, alpha=1.0 / 257.0)
    out = np.empty(image.shape, np.uint8)
    for start in range(0, len(image), _BAND_ROWS):
        out[start : start + _BAND_ROWS] = _band_to_uint8(image[start : start + _BAND_ROWS])
    return out


def _band_to_uint8(band: np.ndarray) -> np.ndarray:
    if np.issubdtype(band.dtype, np.floating):  # HDR/EXR/float TIFF, nominally in [0, 1]
        return np.round(np.clip(band, 0.0, 1.0) * 255.0)
    info = np.iinfo(band.dtype)
    return np.round((band.astype(np.float64) - info.min) / (info.max - info.min) * 255.0)


def _composite_alpha(bgr: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    out = np.empty(bgr.shape, np.uint8)
    for start in range(0, len(bgr), _BAND_ROWS):
        rows = slice(start, start + _BAND_ROWS)
        weight = alpha[rows].astype(np.float32)[:, :, None] / 255.0
        blended = bgr[rows].astype(np.float32) * weight + _ALPHA_BACKGROUND * (1.0 - weight)
        out[rows] = np.round(blended)
    return out
