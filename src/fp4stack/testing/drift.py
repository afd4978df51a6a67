"""``drift``: classify a line's patches against another release, by behaviour first.

The text half (``stack.drift``) says how each patch meets the release's pristine tree. The
behaviour half runs every patch's ``Test:`` ids on that pristine release, in a venv holding
its official wheel (torch and companions from the line's pins) with
``FP4STACK_LINE=<upstream>@<version>``: tests that pass there mean the release already has
the fix, tests that fail mean the patch is still needed. When no such venv can be made the
text decides, and the report says why.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from fp4stack.core.download import fetch
from fp4stack.core.errors import EnvError
from fp4stack.core.log import log
from fp4stack.stack import drift as text
from fp4stack.stack.drift import DriftReport, PatchDrift
from fp4stack.stack.pins import LINE_ENV, Line, Project
from fp4stack.stack.resolve import check_target, resolve
from fp4stack.stack.series import parse_patch, series_paths
from fp4stack.testing import envs
from fp4stack.testing.prove import combine, test_outcome
from fp4stack.testing.pytest_run import run_pytest


@dataclass(frozen=True)
class TestEnv:
    """Where a release's pristine code can be tested: an interpreter, and any extra import
    path (a source tree) put first."""

    __test__ = False  # not a pytest test class, despite the name

    python: Path
    pythonpath: tuple[Path, ...] = ()


def pristine_env(project: Project, target: Line) -> TestEnv:
    """A venv with ``target``'s official wheel: ``build/venv/<upstream>@<version>.pristine``."""
    wheel = fetch(target.distribution, target.wheel, project.cache)
    recipe = envs.EnvRecipe(
        torch=target.env.torch,
        requires=target.env.requires,
        wheel=str(wheel),
        remove=target.env.remove,
    )
    venv = envs.ensure(project.venv(f"{target.id}.pristine"), recipe)
    return TestEnv(envs.python(venv))


def drift(
    project: Project,
    line: Line,
    version: str,
    *,
    run_tests: bool = True,
    test_env: TestEnv | None = None,
) -> tuple[DriftReport, Line]:
    """Every patch of ``line`` against release ``version``; also the target's pins.

    :param run_tests: False: the text alone decides (no venv is made).
    :param test_env: where to run the tests instead of a venv of the official wheel.
    """
    check_target(project, line, version, newer=False)
    target = resolve(project, line, version)
    patches = text.text_drift(project, line, target)
    note = "not run (--no-tests): the text decides"
    if run_tests:
        try:
            env = test_env or pristine_env(project, target)
        except EnvError as error:
            note = f"no test env for {target.id} ({error}): the text decides"
            log(note, "warn")
        else:
            patches, note = _behaviour(project, line, target, env, patches), ""
    patches = [dataclasses.replace(p, verdict=text.verdict(p.text, p.tested)) for p in patches]
    return DriftReport(line.id, target.id, line.distribution, patches, note), target


def _behaviour(
    project: Project, line: Line, target: Line, env: TestEnv, patches: list[PatchDrift]
) -> list[PatchDrift]:
    tests = {p.name: tuple(parse_patch(p).trailer("Test"))
             for p in series_paths(project.patches(line))}  # fmt: skip
    ids = sorted({t for ts in tests.values() for t in ts})
    if not ids:
        return patches
    log(f"{line.id}: running {len(ids)} regression tests on pristine {target.id}")
    extra = {LINE_ENV: target.id}
    if env.pythonpath:
        extra["PYTHONPATH"] = ":".join(str(p) for p in env.pythonpath)
    result = run_pytest(env.python, ["-q", "--continue-on-collection-errors", *ids],
                        cwd=project.root, env=extra, echo=False)  # fmt: skip
    out = []
    for p in patches:
        named = tests.get(p.patch, ())
        tested = combine([test_outcome(t, result) for t in named]) if named else "not run"
        out.append(dataclasses.replace(p, tests=named, tested=tested))
    return out
