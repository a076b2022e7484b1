"""The contract between `fiqa export` (writer) and `fiqa score` (reader) of a quality model.

Both sides import these names so that a model exported by one version of the tool is read the
same way by the scorer. Nothing here imports torch or onnxruntime.
"""

from __future__ import annotations

INPUT_NAME = "input"
EMBEDDING_OUTPUT = "embedding"
QUALITY_OUTPUT = "quality"
INPUT_SIZE = 112

# The released CR-FIQA code feeds RGB crops normalised as (pixel / 255 - 0.5) / 0.5.
COLOR_ORDER = "RGB"
PIXEL_SCALE = 1.0 / 255.0
MEAN = (0.5, 0.5, 0.5)
STD = (0.5, 0.5, 0.5)

# ArcFace 5-point template for 112x112 crops (insightface `face_align.arcface_dst`).
ALIGNMENT_TEMPLATE = "arcface_112_5pt"

# Metadata property keys written into the ONNX model.
META_ARCHITECTURE = "fiqa.architecture"
META_EMBEDDING_SIZE = "fiqa.embedding_size"
META_INPUT_SIZE = "fiqa.input_size"
META_COLOR_ORDER = "fiqa.color_order"
META_MEAN = "fiqa.mean"
META_STD = "fiqa.std"
META_PIXEL_SCALE = "fiqa.pixel_scale"
META_ALIGNMENT = "fiqa.alignment"
META_CR_FORMULA = "fiqa.cr_formula"
META_SOURCE_SHA256 = "fiqa.source_sha256"
META_VERSION = "fiqa.version"
META_PRECISION = "fiqa.precision"
META_DESCRIPTION = "fiqa.description"
# The terms of the data a model was trained on (`fiqa export --data-terms`): a model inherits
# them, and `fiqa doctor` shows them.
META_DATA_TERMS = "fiqa.data_terms"
# `fiqa calibrate`: the map from raw quality to quality_100 (fiqa_cli.runtime.calibration).
META_CALIBRATION = "fiqa.quality_100"


def preprocessing() -> dict[str, object]:
    """What a training checkpoint records of its inputs, and what export checks it against."""
    return {
        "input_size": INPUT_SIZE,
        "color_order": COLOR_ORDER,
        "mean": list(MEAN),
        "std": list(STD),
        "alignment": ALIGNMENT_TEMPLATE,
    }


CR_FORMULA_PAPER = "paper"  # CCS / (NNCCS + 1 + eps)
CR_FORMULA_RELEASED = "released"  # CCS / (NNCCS + eps), as in the released training code
