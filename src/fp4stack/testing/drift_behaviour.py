"""A line's patches' tests on another release's pristine code: the behaviour half of drift.

Every patch's ``Test:`` ids run on the pristine release, in a venv holding its official
wheel (``pristine_env``) with ``FP4STACK_LINE=<upstream>@<version>``. The text half is
``stack.drift_text``; ``operations.release_drift`` joins the two into the report.

- Tests that pass there: the release already has the fix.
- Tests that cannot be collected there (a module moved, an import fails, the test id is
  gone) are ``not runnable``: no evidence, never "still needed" by themselves.
- Tests that fail or are not runnable run again on the release with every *other* patch
  of the series applied (``stack.drift_text.tree_without``, put in front of the venv's
  package as an overlay): a failure caused by another patch's defect, or a test that needs
  an earlier patch, then passes or fails on this patch's own account.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

from fp4stack.core import git
from fp4stack.core.download import fetch
from fp4stack.core.log import log
from fp4stack.stack import drift_text, sources
from fp4stack.stack.drift_report import NOT_RUNNABLE, PatchDrift
from fp4stack.stack.pins import LINE_ENV, Line, Project
from fp4stack.stack.series import parse_patch, series_paths
from fp4stack.testing import envs, overlay
from fp4stack.testing.prove import combine, test_outcome
from fp4stack.testing.pytest_run import PytestResult, run_pytest

_NOT_FOUND = re.compile(r"^ERROR: (?:not found|found no collectors for): (\S+)", re.M)
_COLLECTING = re.compile(r"^_+ ERROR collecting (\S+) _+$", re.M)


@dataclass(frozen=True)
class TestEnv:
    """Where a release's pristine code can be tested: an interpreter, any extra import path
    (a source tree) put first, and the directory its packages are imported from (for the
    overlays of the leave-one-out runs; None: no such runs)."""

    __test__ = False  # not a pytest test class, despite the name

    python: Path
    pythonpath: tuple[Path, ...] = ()
    site: Path | None = None


@dataclass(frozen=True)
class Outcomes:
    """Per test id: pass, fail, skip or not runnable; and why a test is not runnable."""

    results: dict[str, str]
    reasons: dict[str, str]


def pristine_env(project: Project, target: Line) -> TestEnv:
    """A venv with ``target``'s official wheel: ``build/venv/<upstream>@<version>.pristine``."""
    wheel = fetch(target.distribution, target.wheel, project.cache)
    recipe = envs.EnvRecipe(
        torch=target.env.torch,
        requires=target.env.requires,
        overrides=target.env.overrides,
        wheel=str(wheel),
        remove=target.env.remove,
    )
    venv = envs.ensure(project.venv(f"{target.id}.pristine"), recipe)
    return TestEnv(envs.python(venv), site=envs.site_packages(venv))


def behaviour(
    project: Project, line: Line, target: Line, env: TestEnv, patches: list[PatchDrift]
) -> list[PatchDrift]:
    """``patches`` (the text's verdicts) with what their tests did on ``target``'s pristine
    code, and, where they did not pass, with every other patch of ``line`` applied."""
    paths = series_paths(project.patches(line))
    tests = {p.name: tuple(parse_patch(p).trailer("Test")) for p in paths}
    ids = sorted({t for ts in tests.values() for t in ts})
    if not ids:
        return patches
    log(f"{line.id}: running {len(ids)} regression tests on pristine {target.id}")
    pristine = run_tests(project, env, target, ids)
    out = []
    for p in patches:
        named = tests.get(p.patch, ())
        tested, evidence = _summarize(named, pristine)
        with_others = "not run"
        if named and tested not in ("pass", "skip") and env.site is not None and len(paths) > 1:
            with_others, again = _with_others(project, line, target, env, paths, p.patch)
            evidence = "; ".join(e for e in (evidence, again) if e)
        out.append(dataclasses.replace(
            p, tests=named, tested=tested, tested_with_others=with_others, evidence=evidence
        ))  # fmt: skip
    return out


def _with_others(
    project: Project, line: Line, target: Line, env: TestEnv, paths: list[Path], name: str
) -> tuple[str, str]:
    """``name``'s tests on the target with every other patch applied, and what that shows."""
    assert env.site is not None
    repo = drift_text.scratch_repo(project, target)
    ref, held = drift_text.tree_without(repo, paths, name)
    if not held:
        return "not run", "no other patch applies to the release"
    touched = git.changed_files(repo, sources.UPSTREAM_BRANCH, ref)
    dest = project.build / "overlay" / f"{target.id}.drift" / name.removesuffix(".patch")
    overlay.build(repo, ref, touched, target.package_root, env.site, dest)
    named = tuple(parse_patch(project.patches(line) / name).trailer("Test"))
    log(f"{line.id}: {name}: its tests on {target.id} with the other patches applied")
    result = run_tests(project, dataclasses.replace(env, pythonpath=(dest, *env.pythonpath)),
                       target, list(named))  # fmt: skip
    tested, evidence = _summarize(named, result)
    meaning = {"pass": "so the release has this fix (the failure on pristine was another "
                       "patch's defect or a missing earlier patch)",
               "fail": "so the release still needs it"}  # fmt: skip
    others = "the other patch" if len(held) == 1 else f"the other {len(held)} patches"
    why = f"with {others} applied its tests {tested}"
    if tested in meaning:
        why += f", {meaning[tested]}"
    return tested, "; ".join(e for e in (why, evidence and f"there: {evidence}") if e)


def _summarize(named: tuple[str, ...], outcomes: Outcomes) -> tuple[str, str]:
    if not named:
        return "not run", ""
    results = [outcomes.results.get(t, "fail") for t in named]
    runnable = [r for r in results if r != NOT_RUNNABLE]
    reasons = sorted({outcomes.reasons[t] for t in named if t in outcomes.reasons})
    evidence = f"{NOT_RUNNABLE}: {'; '.join(reasons)}" if reasons else ""
    if not runnable:
        return NOT_RUNNABLE, evidence
    return combine(runnable), evidence


def run_tests(project: Project, env: TestEnv, target: Line, ids: list[str]) -> Outcomes:
    """Each test id's outcome in ``env`` with ``FP4STACK_LINE`` set to ``target``.

    pytest runs nothing when one named id is not found or its file cannot be collected:
    such ids are set aside as not runnable (with pytest's reason) and the rest run again.
    """
    extra = {LINE_ENV: target.id}
    if env.pythonpath:
        extra["PYTHONPATH"] = ":".join(str(p) for p in env.pythonpath)
    results: dict[str, str] = {}
    reasons: dict[str, str] = {}
    remaining = list(ids)
    while remaining:
        result = run_pytest(env.python, ["-q", "--continue-on-collection-errors", *remaining],
                            cwd=project.root, env=extra, echo=False)  # fmt: skip
        unrunnable = _unrunnable(remaining, result)
        for test, reason in unrunnable.items():
            results[test], reasons[test] = NOT_RUNNABLE, reason
        remaining = [t for t in remaining if t not in unrunnable]
        if not unrunnable or not remaining:
            results.update({t: test_outcome(t, result) for t in remaining})
            break
    return Outcomes(results, reasons)


def _unrunnable(ids: list[str], result: PytestResult) -> dict[str, str]:
    """Ids whose file failed to collect (with its error) or that pytest did not find."""
    found: dict[str, str] = {}
    errors = _collection_errors(result.output)
    for test in ids:
        file = test.split("::", 1)[0]
        if file in errors:
            found[test] = f"{file}: {errors[file]}"
        elif any(_same(test, missing) for missing in _NOT_FOUND.findall(result.output)):
            found[test] = f"pytest finds no {test} here (file not collected, or test gone)"
    return found


def _same(test: str, reported: str) -> bool:
    return reported == test or reported.endswith(f"/{test}")


def _collection_errors(output: str) -> dict[str, str]:
    """File -> the last ``E`` line of its collection error."""
    errors: dict[str, str] = {}
    headers = list(_COLLECTING.finditer(output))
    for i, header in enumerate(headers):
        end = headers[i + 1].start() if i + 1 < len(headers) else len(output)
        body = output[header.end() : end]
        lines = [ln[1:].strip() for ln in body.splitlines() if ln.startswith("E ")]
        errors[header.group(1)] = lines[-1] if lines else "cannot be collected"
    return errors
