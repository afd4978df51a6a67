"""The architecture of docs/architecture.md, checked: who may import whom, who prints,
and where subprocesses start. Read from the source with ``ast``; nothing is imported."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "fp4stack"
# Each layer and the fp4stack packages it may import (besides itself).
ALLOWED = {
    "core": set(),
    "stack": {"core"},
    "build": {"core", "stack"},
    "testing": {"core", "stack", "build"},
    "checkpoint": {"core"},
    "installed": {"core", "stack", "build"},
    "operations": {"core", "stack", "build", "testing", "checkpoint", "installed"},
    "cli": {"core", "stack", "build", "testing", "checkpoint", "installed", "operations"},
}


def _modules() -> list[tuple[str, Path, ast.Module]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).parts
        layer = parts[0] if len(parts) > 1 else ""
        out.append((layer, path, ast.parse(path.read_text(), filename=str(path))))
    return out


def _imported_layers(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            module = node.module
            if module == "fp4stack":  # ``from fp4stack import core`` (not ``__version__``)
                names |= {f"fp4stack.{a.name}" for a in node.names if a.name in ALLOWED}
            else:
                names.add(module)
        elif isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
    return {n.split(".")[1] for n in names if n.startswith("fp4stack.") and n.count(".") >= 1}


def test_every_module_belongs_to_a_layer():
    layers = {layer for layer, _, _ in _modules()}
    assert layers <= {*ALLOWED, ""}, layers - set(ALLOWED)


def test_layers_import_only_what_they_stand_on():
    problems = [
        f"{path.relative_to(PACKAGE)} imports fp4stack.{other}"
        for layer, path, tree in _modules()
        if layer in ALLOWED
        for other in _imported_layers(tree) - ALLOWED[layer] - {layer}
    ]
    assert not problems, problems


def test_only_the_cli_prints():
    printing = [
        f"{path.relative_to(PACKAGE)}:{node.lineno}"
        for layer, path, tree in _modules()
        if layer not in ("cli", "")
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print"
    ]
    assert not printing, printing


def test_subprocesses_start_only_in_the_runner():
    users = [
        str(path.relative_to(PACKAGE))
        for _, path, tree in _modules()
        if "subprocess" in _imports(tree)
    ]
    assert users == ["core/runner.py"], users


def _imports(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_no_two_modules_share_a_file_name():
    """A name says one thing: `drift.py` in two packages made every reader ask which."""
    names: dict[str, list[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        if path.name != "__init__.py":
            names.setdefault(path.name, []).append(str(path.relative_to(PACKAGE)))
    assert not {n: p for n, p in names.items() if len(p) > 1}
