"""Show that every patch's regression tests fail on the pristine upstream and pass patched.

Both states run in the upstream's one test venv: an overlay (see ``overlay``) swaps the
files the stack touches for their pristine or patched versions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fp4stack.core import git
from fp4stack.core.log import log
from fp4stack.stack import sources
from fp4stack.stack.pins import LINE_ENV, Line, Project
from fp4stack.stack.series import PatchInfo, parse_patch, series_paths
from fp4stack.testing import envs, overlay
from fp4stack.testing.pytest_run import PytestResult, run_pytest

STATES = {"pristine": sources.UPSTREAM_BRANCH, "patched": "HEAD"}


@dataclass(frozen=True)
class PatchProof:
    """One patch's verdict."""

    upstream: str
    patch: str
    tests: tuple[str, ...]
    pristine: str
    patched: str
    details: tuple[tuple[str, str, str], ...] = ()  # (test, pristine, patched) per test

    @property
    def proven(self) -> bool:
        return bool(self.tests) and self.pristine == "fail" and self.patched == "pass"

    @property
    def skipped_here(self) -> tuple[str, ...]:
        """Tests that skipped in both states: no evidence on this machine (e.g. GPU-only)."""
        return tuple(test for test, a, b in self.details if a == b == "skip")


def prove(
    project: Project, line: Line, venv: Path, patched: PytestResult | None = None
) -> list[PatchProof]:
    """Run each patch's ``Test:`` ids on pristine and patched code; one PatchProof per patch.

    ``patched``: a run of this venv's installed (patched) build that already holds every
    ``Test:`` id, such as ``make test``'s run of tests/<upstream>/; the patched state is then
    read from it instead of being run again.
    """
    patches = [parse_patch(p) for p in series_paths(project.patches(line))]
    test_ids = sorted({t for p in patches for t in p.trailer("Test")})
    if not test_ids:
        return [PatchProof(line.id, p.path.name, (), "-", "-") for p in patches]
    repo = project.src(line)
    touched = git.changed_files(repo, sources.UPSTREAM_BRANCH, "HEAD")
    site = envs.site_packages(venv)
    results: dict[str, PytestResult] = {}
    if patched is not None and all(_outcomes_of(t, patched) for t in test_ids):
        results["patched"] = patched
        log(f"{line.id}: patched results of the {len(test_ids)} regression tests: from the run "
            "of our tests against the installed build")  # fmt: skip
    for state, ref in STATES.items():
        if state in results:
            continue
        log(f"{line.id}: running {len(test_ids)} regression tests on {state} code")
        dest = project.build / "overlay" / line.id / state
        overlay.build(repo, ref, touched, line.package_root, site, dest)
        results[state] = run_pytest(
            envs.python(venv),
            ["-q", "--continue-on-collection-errors", *test_ids],
            cwd=project.root,
            env={"PYTHONPATH": str(dest), LINE_ENV: line.id},
            echo=False,
        )
    return [_verdict(line, p, results) for p in patches]


def _verdict(line: Line, patch: PatchInfo, results: dict[str, PytestResult]) -> PatchProof:
    tests = tuple(patch.trailer("Test"))
    per_test = {s: [test_outcome(t, r) for t in tests] for s, r in results.items()}
    details = tuple(zip(tests, per_test["pristine"], per_test["patched"], strict=True))
    # A test that skips on pristine and patched alike (it needs hardware this machine lacks)
    # is no evidence either way; the verdict rests on the others, and on at least one.
    evidence = [i for i, (_, a, b) in enumerate(details) if not a == b == "skip"]
    states = {
        s: combine([outcomes[i] for i in evidence]) if evidence else "skip"
        for s, outcomes in per_test.items()
    }
    return PatchProof(line.id, patch.path.name, tests, states["pristine"], states["patched"],
                 details)  # fmt: skip


def test_outcome(test: str, result: PytestResult) -> str:
    """``pass``, ``fail`` or ``skip`` for ``test`` (and its parametrizations) in ``result``."""
    matched = _outcomes_of(test, result)
    if not matched:
        return "fail"  # not even collected: it errors on import
    if all(o == "PASSED" for o in matched):
        return "pass"
    if any(o in ("FAILED", "ERROR") for o in matched):
        return "fail"
    return "skip"


def combine(outcomes: list[str]) -> str:
    """``pass`` if every test passed; ``fail`` if every test failed; else ``mixed``."""
    if all(o == "pass" for o in outcomes):
        return "pass"
    if all(o == "fail" for o in outcomes):
        return "fail"
    return "mixed"


def _outcomes_of(test: str, result: PytestResult) -> list[str]:
    return [o for nodeid, o in result.outcomes.items() if _matches(nodeid, test)]


def _matches(nodeid: str, test: str) -> bool:
    return nodeid == test or nodeid.startswith((f"{test}[", f"{test}::"))
