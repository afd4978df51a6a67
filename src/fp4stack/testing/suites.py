"""Environments and test runs for each upstream: its own suite, ours, and the proofs."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from fp4stack.build.wheel import build_wheel
from fp4stack.core.log import log
from fp4stack.stack import sources
from fp4stack.stack.apply import apply
from fp4stack.stack.pins import Project, Upstream
from fp4stack.stack.series import read_entries
from fp4stack.testing import envs
from fp4stack.testing.envs import EnvRecipe
from fp4stack.testing.prove import Proof, prove
from fp4stack.testing.pytest_run import NO_TESTS_COLLECTED, PytestResult, run_pytest

ROOT_CONFIG = ("pyproject.toml", "setup.cfg", "pytest.ini", "tox.ini", "conftest.py")
# The venv our tool tests run in; the Makefile's build/venv/tool/ runs fp4stack itself.
TOOL_TESTS_ENV = "tool-tests"
TOOL_REQUIREMENTS = Path("ci") / "env" / "tool.txt"


@dataclass
class Outcome:
    """What one upstream's (or the tools') test run gave."""

    name: str
    has_upstream: bool = True  # False for our tool tests, which have no upstream suite
    suite: PytestResult | None = None
    suite_note: str = ""
    ours: PytestResult | None = None
    proofs: list[Proof] = field(default_factory=list)


def upstream_env(project: Project, upstream: Upstream) -> Path:
    """Apply, build the patched wheel, and install it in the upstream's test venv."""
    apply(project, upstream)
    wheel = build_wheel(project, upstream)
    recipe = EnvRecipe(
        torch=upstream.env.torch,
        requires=upstream.env.requires,
        requires_no_deps=upstream.env.requires_no_deps,
        wheel=str(wheel),
        remove=upstream.env.remove,
    )
    return envs.ensure(project.venv(upstream.id), recipe)


def tool_env(project: Project) -> Path:
    """The venv for our own tool tests: torch, ci/env/tool.txt and fp4stack itself."""
    requirements = project.root / TOOL_REQUIREMENTS
    recipe = EnvRecipe(
        torch="2.13.0",
        requirement_files=(str(requirements),) if requirements.exists() else (),
        requires=() if requirements.exists() else ("pytest",),
        editable=str(project.root),
    )
    return envs.ensure(project.venv(TOOL_TESTS_ENV), recipe)


def run_upstream(project: Project, upstream: Upstream) -> Outcome:
    """Upstream's own suite, our tests and the proofs, against the patched build."""
    venv = upstream_env(project, upstream)
    outcome = Outcome(upstream.id)
    _run_suite(project, upstream, venv, outcome)
    ours = project.root / "tests" / upstream.tests_dir_name
    if ours.is_dir():
        log(f"{upstream.id}: our tests ({ours.relative_to(project.root)})")
        outcome.ours = _pytest(venv, [str(ours.relative_to(project.root))], project.root)
    outcome.proofs = prove(project, upstream, venv)
    return outcome


def run_tools(project: Project) -> Outcome:
    """Our tests that need no upstream: the machinery and the checkpoint tools."""
    venv = tool_env(project)
    upstream_dirs = {u.tests_dir_name for u in project.upstreams.values()}
    paths = sorted(
        str(p.relative_to(project.root))
        for p in (project.root / "tests").iterdir()
        if p.is_dir() and p.name not in upstream_dirs and not p.name.startswith(("_", "."))
    )
    outcome = Outcome("fp4stack tools", has_upstream=False)
    if paths:
        log(f"tools: our tests ({', '.join(paths)})")
        outcome.ours = _pytest(venv, paths, project.root)
    return outcome


def deselections(project: Project, upstream: Upstream) -> list[str]:
    """Node ids from ``ci/deselect/<id>.txt`` (each line: ``nodeid  # reason``)."""
    return read_entries(project.root / "ci" / "deselect" / f"{upstream.id}.txt")


def selections(project: Project, upstream: Upstream) -> list[str]:
    """Upstream test paths: ``ci/select/<id>.txt`` if present, else the pins' list."""
    path = project.root / "ci" / "select" / f"{upstream.id}.txt"
    return read_entries(path) if path.exists() else list(upstream.tests.paths)


def _run_suite(project: Project, upstream: Upstream, venv: Path, outcome: Outcome) -> None:
    selected = selections(project, upstream)
    if selected:
        tree = _suite_tree(project, upstream, outcome)
    else:
        tree, outcome.suite_note = None, "no upstream tests are pinned"
    if tree is None:
        log(f"{upstream.id}: upstream suite skipped: {outcome.suite_note}", kind="warn")
        return
    workdir = _copy_suite(project, upstream, tree, selected)
    deselect = deselections(project, upstream)
    log(f"{upstream.id}: upstream suite ({len(deselect)} deselections in ci/deselect/)")
    args = [
        *upstream.tests.args,
        *selected,
        *(a for d in deselect for a in ("--deselect", d)),
    ]
    outcome.suite = _pytest(venv, args, workdir)


def _suite_tree(project: Project, upstream: Upstream, outcome: Outcome) -> Path | None:
    if upstream.tests.from_submodule:
        checkout = sources.submodule_checkout(project, upstream)
        if checkout is None:
            outcome.suite_note = (
                f"{upstream.submodule} is not initialized, and PyPI ships no {upstream.id} "
                f"tests; run `git submodule update --init {upstream.submodule}` to include them"
            )
        return checkout
    return project.src(upstream)


def _copy_suite(project: Project, upstream: Upstream, tree: Path, selected: list[str]) -> Path:
    """Copy the tests (and root config) out of the tree, so the tree's own package
    directory cannot shadow the installed, patched one."""
    workdir = project.build / "upstream-tests" / upstream.id
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    for top in sorted({p.split("/", 1)[0] for p in selected}):
        shutil.copytree(tree / top, workdir / top, symlinks=True)
    for name in ROOT_CONFIG:
        if (tree / name).is_file():
            shutil.copy2(tree / name, workdir / name)
    return workdir


def _pytest(venv: Path, args: list[str], cwd: Path) -> PytestResult:
    result = run_pytest(envs.python(venv), args, cwd=cwd)
    if result.returncode == NO_TESTS_COLLECTED:
        log(f"pytest collected no tests in {cwd} for {' '.join(args)}", kind="warn")
    return result
