"""Installed versions of named distributions: what `fiqa doctor` reports and what a training run
records. Standard library only, so a command may import it without loading onnxruntime."""

from __future__ import annotations

from collections.abc import Iterable
from importlib import metadata


def installed_versions(names: Iterable[str]) -> dict[str, str | None]:
    """Each distribution's version, None for one that is not installed."""
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions
