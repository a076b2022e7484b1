"""The quality models fiqa ships, by name: `--model NAME` (or FIQA_MODEL=NAME) takes one of them
instead of a path. Standard library only: the commands resolve names when they parse options.

A value that is one of these names is the shipped model, even if a file of that name is in the
current folder (`./v5` names the file).
"""

from __future__ import annotations

import os
from pathlib import Path

from fiqa_cli.paths import DEFAULT_MODEL_NAME, models_dir

DEFAULT_MODEL = "default"
# name -> its file in fiqa_cli/models/. `default` is the one `fiqa score` uses without --model;
# the others stay selectable after the default changes, so that scores and --fail-under values
# tuned on them keep their meaning.
NAMED_MODELS = {
    DEFAULT_MODEL: DEFAULT_MODEL_NAME,
    # The default's own name, so that a choice of v11 survives the next change of default
    # (which then ships v11 as a file of its own, as v5 is now).
    "v11": DEFAULT_MODEL_NAME,
    "v5": "fiqa_v5.onnx",
}
# The default model of every fiqa that wrote no model record beside its --out (see
# `runtime.model_record`): the model that most likely wrote an unrecorded output.
UNRECORDED_DEFAULT = "v5"


def model_file(value: str | os.PathLike[str]) -> Path:
    """`value` as a model file: a shipped model's name as its file, anything else as a path."""
    return named_model_path(os.fspath(value)) or Path(value)


def named_model_path(name: str) -> Path | None:
    """The shipped file of model `name`; None when no shipped model has that name."""
    file_name = NAMED_MODELS.get(name)
    return None if file_name is None else models_dir() / file_name
