"""The package's layers import downward only (ARCHITECTURE.md): a walk over every module's
imports, including those inside functions, checked against the rules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from conftest import REPO_ROOT

# Leaves: the stdlib-only vocabulary, contract, paths and error base.
LEAVES = {"choices", "model_contract", "paths", "errors", "__init__", "__version__", "models"}
# layer -> the fiqa_cli layers it may import (leaves are always allowed).
ALLOWED = {
    "leaf": set(),
    "runtime": {"runtime"},
    "evaluation": {"runtime", "evaluation"},
    "cluster": {"runtime", "cluster"},
    "api": {"runtime"},
    "commands": {"runtime", "evaluation", "cluster", "commands"},
    "export": {"runtime", "evaluation", "export", "commands"},
    "cli": {"commands", "export", "cli"},
}
# Third-party packages a layer must never import, at any depth.
FORBIDDEN = {
    "leaf": {"click", "torch", "ray", "onnxruntime", "cv2", "numpy", "insightface"},
    "runtime": {"click", "torch", "ray"},
    "evaluation": {"click", "torch", "ray"},
    "cluster": {"click", "torch"},
    "api": {"click", "torch", "ray"},
    "commands": {"torch"},
    "export": set(),
    "cli": {"torch", "onnxruntime", "cv2", "numpy"},
}


def layer_of(module: str) -> str:
    """The layer of a dotted fiqa_cli module name."""
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in LEAVES:
        return "leaf"
    if parts[1] in ("cli", "__main__"):  # the entry points
        return "cli"
    return parts[1]


def package_modules() -> dict[str, Path]:
    """Dotted name -> file for every module of the installed package layout (setup.cfg maps
    fiqa_cli.export to export/)."""
    modules = {}
    for root, package in (
        (REPO_ROOT / "fiqa_cli", "fiqa_cli"),
        (REPO_ROOT / "export", "fiqa_cli.export"),
    ):
        for path in root.rglob("*.py"):
            relative = path.relative_to(root).with_suffix("")
            modules[".".join((package, *relative.parts))] = path
    return modules


def imported_names(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def violations(module: str, path: Path) -> list[str]:
    layer = layer_of(module)
    is_export_cli = module.startswith("fiqa_cli.export.") and module.endswith("_cli")
    found = []
    for name in sorted(imported_names(path)):
        top = name.split(".")[0]
        if top == "click" and layer == "export" and not is_export_cli:
            found.append(f"{module} imports click (only commands/ and export/*_cli.py may)")
        elif top in FORBIDDEN[layer]:
            found.append(f"{module} ({layer}) imports {top}")
        if top != "fiqa_cli" or name == "fiqa_cli":
            continue
        target = layer_of(name)
        if target != "leaf" and target not in ALLOWED[layer]:
            found.append(f"{module} ({layer}) imports {name} ({target})")
    return found


def test_layers_import_downward_only() -> None:
    problems = [
        problem
        for module, path in package_modules().items()
        for problem in violations(module, path)
    ]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    ("module", "planted", "message"),
    [
        ("fiqa_cli.runtime.pipeline", "import click\n", "imports click"),
        ("fiqa_cli.runtime.decode", "def f():\n    import torch\n", "imports torch"),
        ("fiqa_cli.runtime.rows", "from fiqa_cli.evaluation import edc\n", "evaluation"),
        ("fiqa_cli.choices", "import numpy\n", "imports numpy"),
        ("fiqa_cli.export.train", "import click\n", "only commands/"),
        ("fiqa_cli.evaluation.edc", "from fiqa_cli.commands import options\n", "commands"),
    ],
)
def test_a_planted_violation_is_found(
    module: str, planted: str, message: str, tmp_path: Path
) -> None:
    source = package_modules()[module]
    copy = tmp_path / source.name
    copy.write_text(source.read_text() + "\n" + planted)
    assert not violations(module, source)
    assert any(message in problem for problem in violations(module, copy))
