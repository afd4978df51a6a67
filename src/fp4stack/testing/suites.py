"""Environments and test runs for each upstream: its own suite, ours, and the proofs."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from fp4stack.build.wheel import build_wheel
from fp4stack.core.fs import write_atomic
from fp4stack.core.log import log
from fp4stack.stack import sources
from fp4stack.stack.apply import apply
from fp4stack.stack.pins import LINE_ENV, PINS, Line, Project
from fp4stack.stack.series import read_entries
from fp4stack.testing import envs
from fp4stack.testing.envs import EnvRecipe
from fp4stack.testing.prove import PatchProof, prove
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
    proofs: list[PatchProof] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # phase -> wall time

    @contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        start = time.monotonic()
        try:
            yield
        finally:
            self.seconds[phase] = self.seconds.get(phase, 0.0) + time.monotonic() - start


def upstream_env(project: Project, line: Line) -> Path:
    """Apply, build the patched wheel (and those of `wheels_from`), install them in its venv."""
    return envs.ensure(project.venv(line.id), upstream_recipe(project, line))


def upstream_recipe(project: Project, line: Line) -> EnvRecipe:
    """Apply and build the patched wheel (and those of `wheels_from`): what its venv holds.
    Touches build/src/ and dist/ of those lines, so never run two of these at once."""
    apply(project, line)
    wheel = build_wheel(project, line)
    extra = []
    for other in [project.line(name) for name in line.env.wheels_from]:
        apply(project, other)
        extra.append(str(build_wheel(project, other)))
    return EnvRecipe(
        torch=line.env.torch,
        requires=line.env.requires,
        requires_no_deps=line.env.requires_no_deps,
        overrides=line.env.overrides,
        wheel=str(wheel),
        extra_wheels=tuple(extra),
        remove=line.env.remove,
    )


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


def run_upstream(project: Project, line: Line, recipe: EnvRecipe | None = None) -> Outcome:
    """Upstream's own suite, our tests and the proofs, against the patched build
    (``recipe``: from :func:`upstream_recipe`, when that already ran)."""
    outcome = Outcome(line.id)
    with outcome.timed("env"):
        venv = envs.ensure(project.venv(line.id), recipe or upstream_recipe(project, line))
    _run_suite(project, line, venv, outcome)
    ours = project.root / "tests" / line.tests_dir_name
    if ours.is_dir():
        log(f"{line.id}: our tests ({ours.relative_to(project.root)})")
        with outcome.timed("our tests"):
            outcome.ours = _pytest(
                venv, [str(ours.relative_to(project.root))], project.root, env=line_env(line)
            )
    with outcome.timed("prove"):
        outcome.proofs = prove(project, line, venv, patched=outcome.ours)
    return outcome


def run_tools(project: Project) -> Outcome:
    """Our tests that need no upstream: each directory of tests/ that is no upstream's, which
    is tests/fp4stack/ (one directory per package of src/fp4stack/)."""
    outcome = Outcome("fp4stack tools", has_upstream=False)
    with outcome.timed("env"):
        venv = tool_env(project)
    upstream_dirs = {line.tests_dir_name for line in project.lines.values()}
    paths = sorted(
        str(p.relative_to(project.root))
        for p in (project.root / "tests").iterdir()
        if p.is_dir() and p.name not in upstream_dirs and not p.name.startswith(("_", "."))
    )
    if paths:
        log(f"tools: our tests ({', '.join(paths)})")
        with outcome.timed("our tests"):
            outcome.ours = _pytest(venv, paths, project.root)
    return outcome


def deselections(project: Project, line: Line) -> list[str]:
    """Node ids from ``ci/deselect/<upstream>/<version>.txt`` (each: ``nodeid  # reason``)."""
    return read_entries(project.ci_list("deselect", line))


def selections(project: Project, line: Line) -> list[str]:
    """Upstream test paths: ``ci/select/<upstream>/<version>.txt`` if present, else the
    pins' list."""
    path = project.ci_list("select", line)
    return read_entries(path) if path.exists() else list(line.tests.paths)


def _run_suite(project: Project, line: Line, venv: Path, outcome: Outcome) -> None:
    selected = selections(project, line)
    if selected:
        tree = _suite_tree(project, line, outcome)
    else:
        tree, outcome.suite_note = None, "no upstream tests are pinned"
    if tree is None:
        log(f"{line.id}: upstream suite skipped: {outcome.suite_note}", kind="warn")
        return
    deselect = deselections(project, line)
    log(f"{line.id}: upstream suite ({len(deselect)} deselections in ci/deselect/)")
    args = [
        *line.tests.args,
        *selected,
        *(a for d in deselect for a in ("--deselect", d)),
    ]
    with outcome.timed("upstream suite"):
        workdir = _copy_suite(project, line, tree, selected)
        outcome.suite = _pytest(venv, args, workdir, env=line_env(line))


def _suite_tree(project: Project, line: Line, outcome: Outcome) -> Path | None:
    if line.tests.from_submodule:
        checkout = sources.submodule_tree(project, line)
        if checkout is None:
            outcome.suite_note = suite_skip_reason(project, line)
        return checkout
    return project.src(line)


def suite_skip_reason(project: Project, line: Line) -> str:
    """Why a line whose tests come from its submodule cannot run them here."""
    pypi = f"PyPI ships no {line.upstream} tests"
    if not line.commit:
        return (f"{PINS} has no tag commit for {line.id} (commit = \"\"), so its tests "
                f"cannot be taken from {line.submodule}, and {pypi}; fill in the commit of "
                f"tag {line.tag} (`git ls-remote {line.git} {line.tag}`)")  # fmt: skip
    if not (project.root / line.submodule / ".git").exists():
        return (f"{line.submodule} is not initialized, and {pypi}; run "
                f"`git submodule update --init {line.submodule}` to include them")  # fmt: skip
    return (f"{line.submodule} lacks {line.id}'s commit {line.commit[:12]}, and {pypi}; "
            f"fetch tag {line.tag} there to include them")  # fmt: skip


def _copy_suite(project: Project, line: Line, tree: Path, selected: list[str]) -> Path:
    """Copy the tests (and root config) out of the tree, so the tree's own package
    directory cannot shadow the installed, patched one."""
    workdir = project.build / "upstream-tests" / line.id
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    for top in sorted({p.split("/", 1)[0] for p in selected}):
        shutil.copytree(tree / top, workdir / top, symlinks=True)
    for name in ROOT_CONFIG:
        if (tree / name).is_file():
            shutil.copy2(tree / name, workdir / name)
    return workdir


RECORDS = "test-records.json"


def write_records(project: Project, outcomes: list[Outcome]) -> None:
    """Keep each line's upstream suite counts from this run in build/test-records.json
    (``make pr`` quotes them); lines not run keep their earlier counts."""
    records = read_records(project)
    for outcome in outcomes:
        if outcome.has_upstream and outcome.suite is not None:
            counts = outcome.suite.counts
            keys = ("passed", "failed", "error", "skipped", "xfailed", "deselected")
            parts = [f"{counts[k]} {k}" for k in keys if counts.get(k)]
            records[outcome.name] = ", ".join(parts)
    write_atomic(project.build / RECORDS, json.dumps(records, indent=1, sort_keys=True))


def read_records(project: Project) -> dict[str, str]:
    """Line id -> the upstream suite counts of its last ``make test`` ({} if none)."""
    try:
        data = json.loads((project.build / RECORDS).read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def line_env(line: Line) -> dict[str, str]:
    """What our tests see of the line under test: ``FP4STACK_LINE=<upstream>@<version>``."""
    return {LINE_ENV: line.id}


def _pytest(
    venv: Path, args: list[str], cwd: Path, env: dict[str, str] | None = None
) -> PytestResult:
    result = run_pytest(envs.python(venv), args, cwd=cwd, env=env)
    if result.returncode == NO_TESTS_COLLECTED:
        log(f"pytest collected no tests in {cwd} for {' '.join(args)}", kind="warn")
    return result
