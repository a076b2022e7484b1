"""Degradations of controlled strength made from real photos (blur, downscaling, JPEG, noise,
under-exposure, occlusion), shared by training, evaluation tools, benchmarks and tests.

numpy and OpenCV only, so that the scoring and evaluation side can use it without torch.
"""

from __future__ import annotations

import cv2
import numpy as np

# The physical parameter of each degradation at strength 0 and at strength 1; strengths in
# between interpolate linearly. Strength 0 always returns the image unchanged.
DEGRADATION_PARAMETERS: dict[str, tuple[float, float]] = {
    "blur": (0.0, 3.0),  # Gaussian sigma, pixels
    "downscale": (1.0, 6.0),  # shrink factor before scaling back up
    "jpeg": (100.0, 5.0),  # JPEG quality
    "noise": (0.0, 20.0),  # standard deviation of additive Gaussian noise, grey levels
    "underexposure": (1.0, 0.25),  # exposure factor applied to every pixel
    # Fraction of the image height covered from the bottom: on an aligned 112x112 crop, the
    # mouth, then the nose, up to just below the eyes (a face mask or scarf).
    "occlusion": (0.0, 0.5),
}
DEGRADATIONS = tuple(DEGRADATION_PARAMETERS)
# Mid-grey, a flat occluder that adds no edges of its own besides its border.
OCCLUDER_GREY = 128


def degradation_parameter(kind: str, strength: float) -> float:
    """The physical parameter (see DEGRADATION_PARAMETERS) of `kind` at `strength` in [0, 1]."""
    if kind not in DEGRADATION_PARAMETERS:
        raise ValueError(f"unknown degradation {kind!r}; choose from {', '.join(DEGRADATIONS)}")
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"degradation strength must be in [0, 1], got {strength}")
    weakest, strongest = DEGRADATION_PARAMETERS[kind]
    return weakest + (strongest - weakest) * strength


def degradation_strength(kind: str, parameter: float) -> float:
    """The strength at which `kind` has the physical `parameter` (the inverse of
    degradation_parameter)."""
    weakest, strongest = DEGRADATION_PARAMETERS[kind]
    return (parameter - weakest) / (strongest - weakest)


def degrade(
    image: np.ndarray,
    kind: str,
    strength: float,
    *,
    color_order: str = "BGR",
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """A degraded copy of an HxWx3 uint8 image; `strength` in [0, 1] sets the physical
    parameter listed in DEGRADATION_PARAMETERS, and strength 0 is the image unchanged.

    Only JPEG depends on `color_order` ("BGR" or "RGB"): the encoder derives luma and
    chroma from it. `rng` draws the noise; pass a seeded one for repeatable results.
    """
    if image.dtype != np.uint8:
        raise ValueError(f"degrade expects a uint8 image, got {image.dtype}")
    parameter = degradation_parameter(kind, strength)
    if strength == 0.0:
        return image.copy()
    if kind == "blur":
        return cv2.GaussianBlur(image, (0, 0), sigmaX=parameter)
    if kind == "downscale":
        return _downscale(image, parameter)
    if kind == "jpeg":
        return _jpeg(image, round(parameter), color_order)
    if kind == "noise":
        noise = (rng or np.random.default_rng()).normal(0.0, parameter, image.shape)
        return np.clip(np.rint(image + noise), 0, 255).astype(np.uint8)
    if kind == "underexposure":
        return (image * parameter).astype(np.uint8)
    return _occlude(image, parameter)  # the one kind left: occlusion


def _downscale(image: np.ndarray, factor: float) -> np.ndarray:
    height, width = image.shape[:2]
    small_size = (max(1, round(width / factor)), max(1, round(height / factor)))
    small = cv2.resize(image, small_size, interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def _occlude(image: np.ndarray, fraction: float) -> np.ndarray:
    occluded = image.copy()
    occluded[image.shape[0] - round(fraction * image.shape[0]) :] = OCCLUDER_GREY
    return occluded


def _jpeg(image: np.ndarray, quality: int, color_order: str) -> np.ndarray:
    if color_order not in ("BGR", "RGB"):
        raise ValueError(f"color_order must be BGR or RGB, got {color_order!r}")
    bgr = image[..., ::-1] if color_order == "RGB" else image
    _, encoded = cv2.imencode(
        ".jpg", np.ascontiguousarray(bgr), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    decoded = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
    return np.ascontiguousarray(decoded[..., ::-1]) if color_order == "RGB" else decoded
