"""Prove a cut PR in its line's test env: the ported test red without the fix, green with it.

The package files the fixes touch are overlaid (see ``overlay``) as they are without the
fix and with it; the ported tests run from a copy of the PR tree's test files (so the
tree's own package directory cannot shadow the installed one, and the upstream's
conftest files, which may want GPU or network fixtures, stay out: the ported tests use
none). Then ruff checks the ported tests and the touched files with the upstream's own
settings: the tree's ``pyproject.toml`` / ``ruff.toml``, or our stand-in
``upstream/ruff/<upstream>.toml`` when the tree has none (a wheel tree).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from fp4stack.core import git
from fp4stack.core.log import log
from fp4stack.core.runner import run
from fp4stack.stack.pins import LINE_ENV, Project
from fp4stack.stack.pr import Proof, Work
from fp4stack.testing import envs, overlay
from fp4stack.testing.pytest_run import PytestResult, run_pytest

RUFF_CONFIGS = ("ruff.toml", ".ruff.toml", "pyproject.toml")


def prove_pr(project: Project, work: Work, venv: Path) -> Proof:
    """Run the ported tests without and with the fix in ``venv``; lint the touched files."""
    site = envs.site_packages(venv)
    scratch = work.repo.parent / "prove"
    shutil.rmtree(scratch, ignore_errors=True)
    tests_dir = scratch / "tests"
    for test in work.tests:
        target = tests_dir / test
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(git.show_file(work.repo, work.head, test) or b"")
    results: dict[str, PytestResult] = {}
    for state, ref in (("without the fix", work.red_ref), ("with the fix", work.green_ref)):
        log(f"{work.line.id}: ported test(s) {state}")
        dest = scratch / "overlay" / ref[:12]
        overlay.build(work.repo, ref, list(work.touched), work.line.package_root, site, dest)
        results[state] = run_pytest(
            envs.python(venv),
            ["-q", "--noconftest", "--rootdir", str(tests_dir), *work.tests],
            cwd=tests_dir,
            env={"PYTHONPATH": str(dest), LINE_ENV: work.line.id},
            echo=False,
        )
    red, green = results["without the fix"], results["with the fix"]
    return Proof(
        red="failed" if _all_failed(red) else f"not failing ({red.summary or red.returncode})",
        green="passed"
        if _all_passed(green)
        else f"not passing ({green.summary or green.returncode})",
        red_counts=_counts(red),
        green_counts=_counts(green),
        lint=lint(project, work),
    )  # fmt: skip


def _all_failed(result: PytestResult) -> bool:
    failed = result.count("failed") + result.count("error") + result.count("errors")
    return result.returncode != 0 and result.count("passed") == 0 and failed > 0


def _all_passed(result: PytestResult) -> bool:
    bad = result.count("failed") + result.count("error") + result.count("errors")
    return result.ok and result.count("passed") > 0 and bad == 0


def _counts(result: PytestResult) -> str:
    keys = ("passed", "failed", "error", "errors", "skipped")
    parts = [f"{result.count(k)} {k}" for k in keys if result.count(k)]
    return ", ".join(parts) or f"pytest exit {result.returncode}"


def lint(project: Project, work: Work) -> str:
    """``clean``, or what ruff says about the PR's Python files under the upstream's config."""
    config = ruff_config(project, work)
    if config is None:
        return (
            f"not checked: no ruff settings in the tree or upstream/ruff/{work.line.upstream}.toml"
        )
    changed = git.changed_files(work.repo, work.base, work.head)
    files = [f for f in changed if f.endswith(".py") and (work.repo / f).is_file()]
    if not files:
        return "clean"
    ruff = _ruff()
    base = [ruff, "--config", str(config)]
    check = run([*base[:1], "check", "--no-cache", "--no-fix", *base[1:], *files],
                cwd=work.repo, check=False)  # fmt: skip
    fmt = run([*base[:1], "format", "--check", "--no-cache", *base[1:], *files],
              cwd=work.repo, check=False)  # fmt: skip
    if check.returncode == 0 and fmt.returncode == 0:
        return "clean"
    return "\n".join(r.stdout.strip() for r in (check, fmt) if r.returncode != 0)


def ruff_config(project: Project, work: Work) -> Path | None:
    """The tree's own ruff settings, else our stand-in for the upstream, else None."""
    for name in RUFF_CONFIGS:
        path = work.repo / name
        if path.is_file() and (name != "pyproject.toml" or "[tool.ruff" in path.read_text()):
            return path
    ours = project.root / "upstream" / "ruff" / f"{work.line.upstream}.toml"
    return ours if ours.is_file() else None


def _ruff() -> str:
    beside = Path(sys.executable).parent / "ruff"
    return str(beside) if beside.is_file() else shutil.which("ruff") or "ruff"
