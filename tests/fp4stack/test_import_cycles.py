"""No two modules of fp4stack import each other, however indirectly.

Read from the source with ``ast``; nothing is imported. Every import counts, also one inside a
function (a lazy import only hides a cycle until both modules are loaded) or under
``TYPE_CHECKING``. ``from fp4stack.core import finder`` is an edge to the module
``fp4stack.core.finder``; ``from fp4stack.core.finder import Client`` is one too. Importing a
submodule is not counted as an edge to its package's ``__init__``.
"""

from __future__ import annotations

import ast
from collections import deque
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "fp4stack"
PROBES = PACKAGE / "installed" / "probes"


def _name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The fp4stack modules that the module ``name`` (at ``path``) imports."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: level 1 is this package, 2 its parent, ...
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                child = f"{base}.{alias.name}"
                targets.add(child if child in known else base)
    return {target for target in targets if target in known and target != name}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def _components(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            for child in edges:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def _cycle(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """One shortest cycle through the first module of ``component``, start repeated at the end."""
    start, members = component[0], set(component)
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for child in sorted(graph[node] & members):
            if child == start:
                path = [node]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [*reversed(path), start]
            if child not in came_from:
                came_from[child] = node
                queue.append(child)
    raise AssertionError(f"{component} is not strongly connected")


def test_the_cycle_finder_names_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"d", "f"}, "f": {"e"}}
    assert sorted(_components(graph)) == [["a", "b", "c"], ["e", "f"]]
    assert _cycle(graph, ["a", "b", "c"]) == ["a", "b", "c", "a"]
    assert _components({"a": {"b"}, "b": set()}) == []


def test_relative_and_package_imports_resolve_to_modules(tmp_path):
    path = tmp_path / "finder.py"
    path.write_text(
        "from . import download\nfrom .errors import SourceError\nfrom .. import stack\n"
        "import fp4stack.core.log\nfrom fp4stack.core import nothing_such\n"
    )
    known = {"p.core", "p.core.download", "p.core.errors", "p.stack", "fp4stack.core.log"}
    known |= {"fp4stack.core"}
    assert _imports("p.core.finder", path, known) == {
        "p.core.download",
        "p.core.errors",
        "p.stack",
        "fp4stack.core.log",
        "fp4stack.core",
    }


def test_no_import_cycles():
    graph = _graph()
    cycles = "\n".join(" -> ".join(_cycle(graph, c)) for c in _components(graph))
    assert not cycles, f"modules that import each other (lazy imports count too):\n{cycles}"


def test_probes_import_nothing_of_fp4stack():
    """A probe runs in the user's interpreter, which need not have fp4stack installed."""
    using = [
        f"{path.relative_to(PACKAGE)} imports {target}"
        for path in sorted(PROBES.glob("*.py"))
        for target in _imports(_name(path), path, set(_modules()) | {"fp4stack"})
    ]
    assert not using, using
