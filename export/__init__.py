"""Training and export (installed as `fiqa_cli.export`); needs the `train` extra (torch).

Importing this package does not import torch: only the modules that need it do.
"""

# The names in backbones.BACKBONES, for command-line choices that must not import torch
# (tests/test_train.py checks that the two agree).
ARCHITECTURES = ("iresnet18", "iresnet34", "iresnet50", "iresnet100", "mobilefacenet")
# The names in teacher_targets.TEACHERS, for `fiqa train --cr-teacher` (checked there too).
CR_TEACHERS = ("dlib",)
# Runs on onnxruntime's CPU and CUDA providers; the TorchScript exporter supports it fully.
DEFAULT_OPSET = 17
