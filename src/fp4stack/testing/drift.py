"""``drift``: classify a line's patches against another release, by behaviour first.

The text half (``stack.drift``) says how each patch meets the release's pristine tree. The
behaviour half runs every patch's ``Test:`` ids on that pristine release, in a venv holding
its official wheel with ``FP4STACK_LINE=<upstream>@<version>``. The venv takes the target
line's env pins when that line exists, else the from-line's (and the report says so).

- Tests that pass there: the release already has the fix.
- Tests that cannot be collected there (a module moved, an import fails, the test id is
  gone) are ``not runnable``: no evidence, never "still needed" by themselves.
- Tests that fail or are not runnable run again on the release with every *other* patch
  of the series applied (``stack.drift.tree_without``, put in front of the venv's package
  as an overlay): a failure caused by another patch's defect, or a test that needs an
  earlier patch, then passes or fails on this patch's own account.

When no venv can be made the text decides, and the report says why.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

from fp4stack.core import git
from fp4stack.core.download import fetch
from fp4stack.core.errors import EnvError
from fp4stack.core.log import log
from fp4stack.stack import drift as text
from fp4stack.stack import sources
from fp4stack.stack.drift import NOT_RUNNABLE, DriftReport, PatchDrift
from fp4stack.stack.pins import LINE_ENV, Line, Project
from fp4stack.stack.resolve import check_target, resolve
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


def target_line(project: Project, line: Line, version: str) -> tuple[Line, str]:
    """``line``'s upstream at ``version``, and which pins its test env takes.

    An existing line is taken as pinned (its artifacts, its env). Otherwise the release is
    resolved from the index and its env pins are the from-line's, with a note saying so.
    """
    pinned = project.lines.get(f"{line.upstream}@{version}")
    if pinned is not None:
        return pinned, f"{pinned.id}'s own pins ({_env_summary(pinned)})"
    target = resolve(project, line, version)
    note = (f"no {target.id} line yet, so {line.id}'s env pins ({_env_summary(line)}); "
            f"check them against what {line.distribution} {version} declares")  # fmt: skip
    return target, note


def _env_summary(line: Line) -> str:
    return ", ".join([f"torch {line.env.torch}", *line.env.requires])


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
    return TestEnv(envs.python(venv), site=envs.site_packages(venv))


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
    target, env_note = target_line(project, line, version)
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
    else:
        env_note = ""
    decided = []
    for p in patches:
        verdict, by = text.verdict(p.text, p.tested, p.tested_with_others)
        decided.append(dataclasses.replace(p, verdict=verdict, decided_by=by))
    report = DriftReport(line.id, target.id, line.distribution, decided, note, env_note)
    return report, target


def _behaviour(
    project: Project, line: Line, target: Line, env: TestEnv, patches: list[PatchDrift]
) -> list[PatchDrift]:
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
    repo = text.scratch_repo(project, target)
    ref, held = text.tree_without(repo, paths, name)
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
