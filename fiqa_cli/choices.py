"""The vocabulary that commands and the runtime share: devices, detectors, face choices,
default batch sizes and environment variables. Standard library only, so that any layer may
import it and `--help` loads nothing heavy."""

from __future__ import annotations

DEVICES = ("auto", "cpu", "cuda")
# Only where a run's input shapes are known ahead (`fiqa score`): TensorRT builds an engine
# per shape profile.
TENSORRT_DEVICE = "tensorrt"
AUTO_DETECTOR = "auto"
DETECTORS = (AUTO_DETECTOR, "scrfd", "mtcnn", "yunet")
NO_DETECTOR = "none"  # the inputs are aligned crops already
LARGEST_FACE = "largest"
CENTRAL_FACE = "central"
ALL_FACES = "all"

# On a CPU, batches of 16 crops run the default model as fast as any larger batch and take a
# third of the memory of 64 (benchmarks/stages.py); GPUs want larger batches.
CPU_BATCH_SIZE = 16
CUDA_BATCH_SIZE = 64

# The pixel budget of one decoded image (`fiqa score --max-pixels`): 120 megapixels holds the
# photos of the largest common camera sensors (12000x9000) and bounds what a decompression
# bomb (a 3 MB PNG of 32000x32000) can cost before it is refused.
DEFAULT_MAX_PIXELS = 120_000_000

MODEL_ENVVAR = "FIQA_MODEL"
DEVICE_ENVVAR = "FIQA_DEVICE"
DETECTOR_ENVVAR = "FIQA_DETECTOR"

# onnxruntime's execution providers behind the devices, and how to get the GPU ones: named
# here so that `fiqa doctor` can say them even when onnxruntime does not import.
CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"
TENSORRT_FIX = (
    "install onnxruntime-gpu and TensorRT (pip install tensorrt, or NVIDIA's packages) with "
    "its libnvinfer libraries on the loader's path"
)
# Installing insightface next to onnxruntime-gpu leaves CPU onnxruntime's files on top.
CUDA_FIX = "pip install --force-reinstall --no-deps onnxruntime-gpu"

# `fiqa evaluate`'s default FR input normalisation, (RGB pixel - mean) / std: that of
# `mobilefacenet_eval.onnx` (insightface's ArcFace models use std 127.5).
FR_MEAN = 127.5
FR_STD = 128.0

# `fiqa best --group-by`: which frames compete for one best shot.
GROUP_BY_FOLDER, GROUP_BY_VIDEO, GROUP_BY_NONE = "folder", "video", "none"
GROUP_BYS = (GROUP_BY_FOLDER, GROUP_BY_VIDEO, GROUP_BY_NONE)
