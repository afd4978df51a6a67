"""A plain `pip install compressed-tensors` brings every third-party module the package
imports at module level: each is declared by compressed-tensors or by one of its declared
requirements, transitively (extras aside). Read from the installed metadata, so it holds
for the wheel users install; compressed-tensors 0.17.0 imports psutil (offload/load.py)
without declaring it, and `import compressed_tensors` fails where nothing else brought it."""

from __future__ import annotations

import ast
import importlib.metadata
import sys
from pathlib import Path

import compressed_tensors
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

DISTRIBUTION = "compressed-tensors"


def brought_by(distribution: str) -> set[str]:
    """``distribution`` and every distribution its base requirements bring, transitively."""
    seen: set[str] = set()
    todo = [distribution]
    while todo:
        name = canonicalize_name(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for requirement in map(Requirement, requires):
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    return seen


def module_level_imports(package: Path) -> dict[str, str]:
    """Third-party top-level module -> the first file of ``package`` importing it at module
    level (not inside a function or a try block)."""
    found: dict[str, str] = {}
    for path in sorted(package.rglob("*.py")):
        for node in ast.parse(path.read_text(), filename=str(path)).body:
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != package.name:
                    found.setdefault(top, str(path.relative_to(package.parent)))
    return found


def test_every_module_level_import_is_brought_by_the_declared_requirements():
    package = Path(compressed_tensors.__file__).parent
    providers = importlib.metadata.packages_distributions()
    brought = brought_by(DISTRIBUTION)
    missing = {
        module: where
        for module, where in module_level_imports(package).items()
        if not {canonicalize_name(d) for d in providers.get(module, [module])} & brought
    }
    assert not missing, (
        f"{DISTRIBUTION} imports these at module level, but neither it nor its requirements "
        f"declare them, so `pip install {DISTRIBUTION}` alone leaves them out: {missing}"
    )
