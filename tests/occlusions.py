"""Synthetic occluders drawn over a real face where its mesh puts the eyes and the mouth, for
the occlusion tests and `benchmarks/occlusion.py`: test material, not part of the installed
package. Sizes are in inter-ocular distances (IOD) of the mesh's eye centres, along the eye
line (u) and across it (v), so the occluders turn and scale with the face."""

from __future__ import annotations

import cv2
import numpy as np

from fiqa_cli.runtime.face_mesh import Mesh, five_points
from fiqa_cli.runtime.occlusion import OUTER_LIP_CONTOUR

BLACK, GREY = (0, 0, 0), (128, 128, 128)
LENS = (25, 22, 20)  # BGR of a dark lens
# Mesh points in mid-cheek (left, right) and below the eyes: the face's own skin colour.
_CHEEKS = (205, 425, 50, 280)


def _axes(mesh: Mesh) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Eye midpoint, unit vectors along (u) and across (v, downwards) the eye line, IOD."""
    left, right = five_points(mesh.points)[:2].astype(np.float64)
    iod = float(np.linalg.norm(right - left))
    u = (right - left) / iod
    return (left + right) / 2, u, np.array([-u[1], u[0]]), iod


def _rectangle(centre, u, v, half_width: float, half_height: float) -> np.ndarray:
    return np.array(
        [centre + su * half_width * u + sv * half_height * v for su, sv in
         ((-1, -1), (1, -1), (1, 1), (-1, 1))]
    )  # fmt: skip


def eye_bar(mesh: Mesh) -> np.ndarray:
    """A bar over both eyes: 2.2 IOD long, 0.44 IOD high, on the eye line (a censor bar)."""
    centre, u, v, iod = _axes(mesh)
    return _rectangle(centre, u, v, 1.1 * iod, 0.22 * iod)


def mouth_patch(mesh: Mesh) -> np.ndarray:
    """A patch over the lips: 1.1 IOD wide, 0.6 IOD high, on the lips' centre."""
    _, u, v, iod = _axes(mesh)
    centre = mesh.points[list(OUTER_LIP_CONTOUR), :2].astype(np.float64).mean(axis=0)
    return _rectangle(centre, u, v, 0.55 * iod, 0.3 * iod)


def filled(image: np.ndarray, polygon: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    """`image` with `polygon` (photo pixels) filled flat in `colour` (BGR), edges antialiased."""
    out = image.copy()
    cv2.fillPoly(out, [np.round(polygon * 16).astype(np.int32)], colour, cv2.LINE_AA, shift=4)
    return out


def textured(image: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """`image` with `polygon` filled by the photo's own top-left corner, tiled: a piece of
    background pasted over the face (textured where the background is)."""
    height, width = image.shape[:2]
    side = max(16, height // 5)
    tiles = np.tile(image[:side, :side], (height // side + 1, width // side + 1, 1))
    mask = np.zeros((height, width), np.uint8)
    cv2.fillPoly(mask, [np.round(polygon * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
    alpha = mask.astype(np.float32)[..., None] / 255
    return (image * (1 - alpha) + tiles[:height, :width] * alpha).astype(np.uint8)


def skin_colour(image: np.ndarray, mesh: Mesh) -> tuple[int, int, int]:
    """The median BGR of 5x5 squares at four cheek points of the mesh."""
    squares = []
    for x, y in np.round(mesh.points[list(_CHEEKS), :2]).astype(int):
        squares.append(image[y - 2 : y + 3, x - 2 : x + 3].reshape(-1, 3))
    return tuple(int(c) for c in np.median(np.concatenate(squares), axis=0))


def sunglasses(image: np.ndarray, mesh: Mesh) -> np.ndarray:
    """Two dark elliptic lenses (0.6 x 0.44 IOD) on the eye centres, joined by a bridge."""
    _, u, _, iod = _axes(mesh)
    eyes = five_points(mesh.points)[:2].astype(np.float64)
    angle = float(np.degrees(np.arctan2(u[1], u[0])))
    axes = (round(0.3 * iod * 16), round(0.22 * iod * 16))
    out = image.copy()
    for eye in eyes:
        centre = tuple(int(c) for c in np.round(eye * 16))
        cv2.ellipse(out, centre, axes, angle, 0, 360, LENS, -1, cv2.LINE_AA, shift=4)
    ends = [tuple(int(c) for c in np.round(end)) for end in
            (eyes[0] + 0.3 * iod * u, eyes[1] - 0.3 * iod * u)]  # fmt: skip
    cv2.line(out, ends[0], ends[1], LENS, max(1, round(0.05 * iod)))
    return out


def jpeg(image: np.ndarray, quality: int = 90) -> np.ndarray:
    """`image` through a JPEG round trip, as an edited photo would be saved."""
    encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])[1]
    return cv2.imdecode(encoded, cv2.IMREAD_COLOR)


def occluded(image: np.ndarray, mesh: Mesh) -> dict[str, np.ndarray]:
    """Each synthetic occlusion of the face `mesh` in `image`, by name, JPEG-saved."""
    bar, patch, skin = eye_bar(mesh), mouth_patch(mesh), skin_colour(image, mesh)
    edits = {
        "eyes: black bar": filled(image, bar, BLACK),
        "eyes: grey bar": filled(image, bar, GREY),
        "eyes: skin-coloured bar": filled(image, bar, skin),
        "eyes: background bar": textured(image, bar),
        "eyes: dark glasses": sunglasses(image, mesh),
        "mouth: black patch": filled(image, patch, BLACK),
        "mouth: skin-coloured patch": filled(image, patch, skin),
        "mouth: background patch": textured(image, patch),
    }
    return {name: jpeg(edited) for name, edited in edits.items()}
