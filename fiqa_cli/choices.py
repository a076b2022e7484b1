"""The vocabulary that commands and the runtime share: devices, detectors, face choices,
default batch sizes and environment variables. Standard library only, so that any layer may
import it and `--help` loads nothing heavy."""

from __future__ import annotations

DEVICES = ("auto", "cpu", "cuda")
# Only where a run's input shapes are known ahead (`fiqa score`): TensorRT builds an engine
# per shape profile.
TENSORRT_DEVICE = "tensorrt"
DETECTORS = ("auto", "scrfd", "mtcnn", "yunet")
NO_DETECTOR = "none"  # the inputs are aligned crops already
LARGEST_FACE = "largest"
CENTRAL_FACE = "central"
ALL_FACES = "all"

# On a CPU, batches of 16 crops run the default model as fast as any larger batch and take a
# third of the memory of 64 (benchmarks/stages.py); GPUs want larger batches.
CPU_BATCH_SIZE = 16
CUDA_BATCH_SIZE = 64

MODEL_ENVVAR = "FIQA_MODEL"
DEVICE_ENVVAR = "FIQA_DEVICE"
DETECTOR_ENVVAR = "FIQA_DETECTOR"
