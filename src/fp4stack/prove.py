"""Show that every patch's regression tests fail on the pristine upstream and pass patched.

Both states run in the upstream's one test venv: an overlay (see ``overlay``) swaps the
files the stack touches for their pristine or patched versions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fp4stack import envs, git, overlay, sources
from fp4stack.log import log
from fp4stack.project import Project, Upstream
from fp4stack.pytest_run import PytestResult, run_pytest
from fp4stack.series import PatchInfo, parse_patch, series_paths

STATES = {"pristine": sources.UPSTREAM_BRANCH, "patched": "HEAD"}


@dataclass(frozen=True)
class Proof:
    """One patch's verdict."""

    upstream: str
    patch: str
    tests: tuple[str, ...]
    pristine: str
    patched: str

    @property
    def proven(self) -> bool:
        return bool(self.tests) and self.pristine == "fail" and self.patched == "pass"


def prove(project: Project, upstream: Upstream, venv: Path) -> list[Proof]:
    """Run each patch's ``Test:`` ids on pristine and patched code; one Proof per patch."""
    patches = [parse_patch(p) for p in series_paths(project.patches(upstream))]
    test_ids = sorted({t for p in patches for t in p.trailer("Test")})
    if not test_ids:
        return [Proof(upstream.id, p.path.name, (), "-", "-") for p in patches]
    repo = project.src(upstream)
    touched = git.changed_files(repo, sources.UPSTREAM_BRANCH, "HEAD")
    site = envs.site_packages(venv)
    results: dict[str, PytestResult] = {}
    for state, ref in STATES.items():
        log(f"{upstream.id}: running {len(test_ids)} regression tests on {state} code")
        dest = project.build / "overlay" / upstream.id / state
        overlay.build(repo, ref, touched, upstream.package_root, site, dest)
        results[state] = run_pytest(
            envs.python(venv),
            ["-q", "--continue-on-collection-errors", *test_ids],
            cwd=project.root,
            env={"PYTHONPATH": str(dest)},
            echo=False,
        )
    return [_verdict(upstream, p, results) for p in patches]


def _verdict(upstream: Upstream, patch: PatchInfo, results: dict[str, PytestResult]) -> Proof:
    tests = tuple(patch.trailer("Test"))
    states = {state: _state_outcome(tests, result) for state, result in results.items()}
    return Proof(upstream.id, patch.path.name, tests, states["pristine"], states["patched"])


def _state_outcome(tests: tuple[str, ...], result: PytestResult) -> str:
    """``pass`` if every test ran and passed; ``fail`` if each test failed somewhere."""
    per_test = []
    for test in tests:
        matched = [o for nodeid, o in result.outcomes.items() if _matches(nodeid, test)]
        if not matched:
            per_test.append("fail")  # not even collected: it errors on import
        elif all(o == "PASSED" for o in matched):
            per_test.append("pass")
        elif any(o in ("FAILED", "ERROR") for o in matched):
            per_test.append("fail")
        else:
            per_test.append("skip")
    if all(o == "pass" for o in per_test):
        return "pass"
    if all(o == "fail" for o in per_test):
        return "fail"
    return "mixed"


def _matches(nodeid: str, test: str) -> bool:
    return nodeid == test or nodeid.startswith((f"{test}[", f"{test}::"))


def format_table(proofs: list[Proof]) -> str:
    """The prove table: one line per patch."""
    rows = [("upstream", "patch", "tests", "pristine", "patched", "verdict")]
    for p in proofs:
        verdict = "proven" if p.proven else "NOT PROVEN"
        rows.append((p.upstream, p.patch, str(len(p.tests)), p.pristine, p.patched, verdict))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                     for row in rows)  # fmt: skip
