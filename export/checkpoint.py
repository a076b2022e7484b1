"""Read a backbone out of a `fiqa train` checkpoint or a bare (official CR-FIQA) state_dict.

Checkpoints are untrusted input: they are unpickled with `weights_only=True`, which cannot
run code, and a file that needs more is refused unless the caller vouches for it.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from fiqa_cli import model_contract
from fiqa_cli.errors import FiqaError
from fiqa_cli.export.backbones import BACKBONES, create_backbone
from fiqa_cli.export.backbones.iresnet import BLOCKS_PER_STAGE

FIQA_CHECKPOINT_FORMAT = "fiqa-checkpoint"
FORMAT_VERSION = 1  # what `fiqa train` writes
SUPPORTED_FORMAT_VERSIONS = (FORMAT_VERSION,)
DATA_PARALLEL_PREFIX = "module."
# torch.save writes a zip archive; before torch 1.6 it wrote a pickle led by this magic number.
_ZIP_MAGIC = b"PK\x03\x04"
_LEGACY_TORCH_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"
_MOBILEFACENET_KEY_PREFIX = "gdc."
_LISTED_KEYS = 5  # how many offending keys an error message names
# Bare state_dicts and pickled models come from the released CR-FIQA training code.
_RELEASED_CODE_CONFIG = {"cr_formula": model_contract.CR_FORMULA_RELEASED}


class CheckpointError(FiqaError):
    """The file is not a checkpoint this tool can load; the message says why."""


@dataclass(frozen=True)
class LoadedBackbone:
    model: nn.Module  # float32, eval mode
    architecture: str
    cr_formula: str
    source_sha256: str


def load_backbone(
    path: str | os.PathLike[str], *, arch: str | None = None, trust: bool = False
) -> LoadedBackbone:
    """Build the backbone stored in the checkpoint at `path`.

    `arch` overrides the architecture recorded in or inferred from the checkpoint; `trust`
    allows unpickling arbitrary objects, which can run code from the file.
    """
    path = Path(path)
    content = _read_checkpoint(path, trust=trust)
    state_dict, config = _backbone_state_and_config(content)
    del content  # drops the head and optimizer state of a training checkpoint
    state_dict = _strip_data_parallel_prefix(state_dict)
    architecture = arch or config.get("arch") or detect_architecture(state_dict)
    if architecture not in BACKBONES:
        known = ", ".join(sorted(BACKBONES))
        raise CheckpointError(f"unknown architecture {architecture!r}; known: {known}")
    embedding_size = int(config.get("embedding_size", _embedding_size(state_dict)))
    # Built without memory (the meta device) and checked against the checkpoint before any
    # tensor is allocated: a config's embedding_size of 10**11, or a stride-0 tensor that
    # claims 10**10 elements in a 5 MB file, would otherwise ask for terabytes.
    with torch.device("meta"):
        model = create_backbone(architecture, embedding_size=embedding_size)
    _check_layout(model, state_dict, architecture)
    # assign=True adopts the loaded tensors instead of copying them into fresh parameters.
    model.load_state_dict(state_dict, assign=True)
    return LoadedBackbone(
        model=model.float().eval(),
        architecture=architecture,
        cr_formula=config.get("cr_formula", model_contract.CR_FORMULA_PAPER),
        source_sha256=file_sha256(path),
    )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def detect_architecture(state_dict: Mapping[str, torch.Tensor]) -> str:
    """Name the architecture whose parameter names `state_dict` has."""
    if any(key.startswith(_MOBILEFACENET_KEY_PREFIX) for key in state_dict):
        return "mobilefacenet"
    blocks = tuple(_count_blocks(state_dict, stage) for stage in range(1, 5))
    for name, expected in BLOCKS_PER_STAGE.items():
        if blocks == expected:
            return name
    if any(blocks):
        known = ", ".join(f"{name} {counts}" for name, counts in BLOCKS_PER_STAGE.items())
        raise CheckpointError(
            f"an iresnet with {blocks} blocks per stage is not supported (known: {known})"
        )
    raise CheckpointError(
        "cannot tell the architecture from the parameter names (first keys: "
        f"{_first(state_dict)}); pass --arch with one of {', '.join(sorted(BACKBONES))}"
    )


def _read_checkpoint(path: Path, *, trust: bool) -> object:
    header = _read_header(path)
    if header.startswith(_ZIP_MAGIC):
        # Memory-mapping leaves unused entries (head, optimizer state) on disk.
        return _torch_load(path, trust=trust, mmap=True)
    if header.startswith(_LEGACY_TORCH_MAGIC):
        return _torch_load(path, trust=trust, mmap=False)
    raise CheckpointError(
        f"{path} is not a PyTorch checkpoint (neither a torch.save zip archive nor a legacy "
        "torch pickle)"
    )


def _read_header(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            header = handle.read(len(_LEGACY_TORCH_MAGIC))
    except FileNotFoundError:
        raise CheckpointError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise CheckpointError(f"{path} is a directory, not a checkpoint file") from None
    except OSError as error:
        raise CheckpointError(f"cannot read {path}: {error.strerror or error}") from None
    if not header:
        raise CheckpointError(f"{path} is empty (0 bytes)")
    return header


def _torch_load(path: Path, *, trust: bool, mmap: bool) -> object:
    try:
        return torch.load(path, map_location="cpu", weights_only=not trust, mmap=mmap)
    except pickle.UnpicklingError as error:
        if trust or "Weights only load failed" not in str(error):
            raise CheckpointError(f"{path} is corrupt: {_first_line(error)}") from None
        found = re.search(r"GLOBAL ([\w.]+)", str(error))
        needs = f" (it references {found.group(1)})" if found else ""
        raise CheckpointError(
            f"{path} holds Python objects beyond tensors and plain containers{needs}; "
            "unpickling it could run arbitrary code. If you trust where it came from, "
            "rerun with --trust-checkpoint."
        ) from None
    except (ImportError, AttributeError) as error:  # a trusted pickle of foreign classes
        raise CheckpointError(
            f"{path} refers to Python code that is not installed ({error}); load it where that "
            "code is and save the backbone's state_dict instead"
        ) from None
    except (OSError, RuntimeError, EOFError, KeyError, ValueError) as error:
        raise CheckpointError(f"{path} is corrupt or truncated: {_first_line(error)}") from None


def _backbone_state_and_config(
    content: object,
) -> tuple[Mapping[str, torch.Tensor], Mapping[str, object]]:
    if isinstance(content, nn.Module):  # a whole pickled model, only reachable with trust
        return content.state_dict(), _RELEASED_CODE_CONFIG
    if not isinstance(content, Mapping):
        raise CheckpointError(
            f"the checkpoint holds a {type(content).__name__}, not a state_dict or a "
            "fiqa train checkpoint"
        )
    if content.get("format") == FIQA_CHECKPOINT_FORMAT:
        version = content.get("format_version")
        if version not in SUPPORTED_FORMAT_VERSIONS:
            raise CheckpointError(f"unsupported fiqa checkpoint format_version {version!r}")
        backbone = content.get("backbone")
        if not isinstance(backbone, Mapping):
            raise CheckpointError("the fiqa train checkpoint has no backbone state_dict")
        config = content.get("config", {})
        _check_config(config)
        _check_preprocessing(config)
        return backbone, config
    if content and all(isinstance(value, torch.Tensor) for value in content.values()):
        return content, _RELEASED_CODE_CONFIG
    raise CheckpointError(
        "the checkpoint is neither a fiqa train checkpoint nor a backbone state_dict "
        f"(top-level keys: {_first(content)})"
    )


def _check_config(config: object) -> None:
    """The config keys export reads, each named when its value is unusable."""
    if not isinstance(config, Mapping):
        raise CheckpointError(
            f"the checkpoint's config is a {type(config).__name__}, not a mapping of settings"
        )
    arch = config.get("arch")
    if arch is not None and not isinstance(arch, str):
        raise CheckpointError(f"the checkpoint's config key arch={arch!r} is not a name")
    size = config.get("embedding_size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise CheckpointError(
            f"the checkpoint's config key embedding_size={size!r} is not a positive whole number"
        )
    formula = config.get("cr_formula", model_contract.CR_FORMULA_PAPER)
    formulas = (model_contract.CR_FORMULA_PAPER, model_contract.CR_FORMULA_RELEASED)
    if formula not in formulas:
        raise CheckpointError(
            f"the checkpoint's config key cr_formula={formula!r} is not one of "
            f"{', '.join(formulas)}"
        )


def _check_preprocessing(config: Mapping[str, object]) -> None:
    # The exported model promises the contract's preprocessing; a model trained on other
    # inputs would be scored wrongly.
    for key, value in model_contract.preprocessing().items():
        if key in config and list(_as_list(config[key])) != list(_as_list(value)):
            raise CheckpointError(
                f"the checkpoint was trained with {key}={config[key]!r}, but exported models "
                f"use {key}={value!r}"
            )


def _as_list(value: object) -> list[object]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _strip_data_parallel_prefix(
    state_dict: Mapping[str, torch.Tensor],
) -> dict[str, torch.Tensor]:
    if state_dict and all(key.startswith(DATA_PARALLEL_PREFIX) for key in state_dict):
        return {key.removeprefix(DATA_PARALLEL_PREFIX): value for key, value in state_dict.items()}
    return dict(state_dict)


def _count_blocks(state_dict: Mapping[str, torch.Tensor], stage: int) -> int:
    pattern = re.compile(rf"layer{stage}\.(\d+)\.")
    indices = {match.group(1) for key in state_dict if (match := pattern.match(key))}
    return len(indices)


def _embedding_size(state_dict: Mapping[str, torch.Tensor]) -> int:
    features = state_dict.get("features.weight")
    return int(features.shape[0]) if features is not None else 512


def _check_layout(
    model: nn.Module, state_dict: Mapping[str, torch.Tensor], architecture: str
) -> None:
    expected = model.state_dict()
    missing = [key for key in expected if key not in state_dict]
    unexpected = [key for key in state_dict if key not in expected]
    mismatched = [
        f"{key} {tuple(state_dict[key].shape)} != {tuple(expected[key].shape)}"
        for key in expected
        if key in state_dict and state_dict[key].shape != expected[key].shape
    ]
    problems = [
        f"{label} ({len(items)}): {_first(items)}"
        for label, items in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("shape mismatches (checkpoint != model)", mismatched),
        )
        if items
    ]
    if problems:
        raise CheckpointError(f"the checkpoint does not fit {architecture}: " + "; ".join(problems))


def _first(items: object) -> str:
    names = list(items)
    shown = ", ".join(str(name) for name in names[:_LISTED_KEYS])
    return shown + (", ..." if len(names) > _LISTED_KEYS else "")


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
