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

import difflib
import json
import shutil
import sys
from pathlib import Path

from fp4stack.core import git
from fp4stack.core.log import log
from fp4stack.core.runner import run
from fp4stack.stack.pins import LINE_ENV, Project
from fp4stack.stack.pr import PortedTestProof, Work
from fp4stack.testing import envs, overlay
from fp4stack.testing.pytest_run import PytestResult, run_pytest

RUFF_CONFIGS = ("ruff.toml", ".ruff.toml", "pyproject.toml")


def prove_pr(project: Project, work: Work, venv: Path) -> PortedTestProof:
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
            ["--noconftest", "--rootdir", str(tests_dir), *work.tests],
            cwd=tests_dir,
            env={"PYTHONPATH": str(dest), LINE_ENV: work.line.id},
            echo=False,
        )
    red, green = results["without the fix"], results["with the fix"]
    return PortedTestProof(
        red="failed" if _all_failed(red) else f"not failing ({red.summary or red.returncode})",
        green="passed"
        if _all_passed(green)
        else f"not passing ({green.summary or green.returncode})",
        red_counts=_counts(red),
        green_counts=_counts(green),
        lint=lint(project, work),
        lint_with=lint_settings(project, work),
    )  # fmt: skip


def _all_failed(result: PytestResult) -> bool:
    """Red: a ported test fails (or the file cannot even be collected) without the fix.

    A ported file may also hold guards of behaviour that already works (they pass on both
    sides); the evidence is that something fails without the fix and nothing with it.
    """
    failed = [o for o in result.outcomes.values() if o in ("FAILED", "ERROR")]
    return result.returncode != 0 and (bool(failed) or not result.outcomes)


def _all_passed(result: PytestResult) -> bool:
    """Green: every ported test passes with the fix."""
    outcomes = set(result.outcomes.values())
    return result.ok and outcomes == {"PASSED"}


def _counts(result: PytestResult) -> str:
    tally: dict[str, int] = {}
    for outcome in result.outcomes.values():
        tally[outcome.lower()] = tally.get(outcome.lower(), 0) + 1
    parts = [f"{n} {k}" for k, n in sorted(tally.items())]
    return ", ".join(parts) or f"not collected (pytest exit {result.returncode})"


def lint(project: Project, work: Work) -> str:
    """``clean``, or what ruff says about the PR's Python changes under the upstream's config.

    New files are checked whole; in a file the PR modifies, only the lines it adds count
    (the rest is the upstream's own code, which our stand-in config may judge otherwise).
    """
    config = ruff_config(project, work)
    if config is None:
        return (
            f"not checked: no ruff settings in the tree or upstream/ruff/{work.line.upstream}.toml"
        )
    added = _added_lines(work)
    files = [f for f in added if f.endswith(".py") and (work.repo / f).is_file()]
    if not files:
        return "clean"
    ruff = _ruff()
    found = run([ruff, "check", "--no-cache", "--no-fix", "--config", str(config),
                 "--output-format", "json", *files], cwd=work.repo, check=False)  # fmt: skip
    prefix = f"{work.repo}/"
    diagnostics = [(d["filename"].removeprefix(prefix), d["location"]["row"], d)
                   for d in json.loads(found.stdout or "[]")]  # fmt: skip
    problems = [f"{name}:{row}: {d['code']} {d['message']}"
                for name, row, d in diagnostics if _counts_for(added, name, row)]  # fmt: skip
    for name in files:
        text = (work.repo / name).read_text()
        formatted = run([ruff, "format", "--no-cache", "--config", str(config),
                         "--stdin-filename", name, "-"], cwd=work.repo, check=False,
                        input_text=text)  # fmt: skip
        if formatted.returncode != 0:
            problems.append(f"{name}: ruff format cannot read it")
            continue
        rows = _differing_rows(text, formatted.stdout)
        problems += [f"{name}:{row}: not formatted as ruff format would"
                     for row in rows if _counts_for(added, name, row)][:1]  # fmt: skip
    return "clean" if not problems else "; ".join(problems)


def _added_lines(work: Work) -> dict[str, set[int] | None]:
    """Tree path -> line numbers the PR adds (None: a new file, all of it)."""
    diff = git.query(work.repo, "diff", "-U0", "--no-renames", work.base, work.head)
    added: dict[str, set[int] | None] = {}
    current = ""
    new_file = False
    for line in diff.splitlines():
        if line.startswith("--- "):
            new_file = line == "--- /dev/null"
        elif line.startswith("+++ b/"):
            current = line.removeprefix("+++ b/")
            added[current] = None if new_file else set()
        elif line.startswith("@@") and (rows := added.get(current)) is not None:
            start, _, count = line.split("+", 1)[1].split(" ", 1)[0].partition(",")
            rows.update(range(int(start), int(start) + int(count or 1)))
    return added


def _counts_for(added: dict[str, set[int] | None], name: str, row: int) -> bool:
    if name not in added:
        return False
    rows = added[name]
    return rows is None or row in rows


def _differing_rows(text: str, formatted: str) -> list[int]:
    """1-based rows of ``text`` that formatting would change."""
    matcher = difflib.SequenceMatcher(a=text.splitlines(), b=formatted.splitlines(), autojunk=False)
    rows: list[int] = []
    for tag, a0, a1, _, _ in matcher.get_opcodes():
        if tag != "equal":
            rows += list(range(a0 + 1, max(a1, a0 + 1) + 1))
    return rows


def lint_settings(project: Project, work: Work) -> str:
    """Whose settings the lint used, in words fit for the PR text."""
    config = ruff_config(project, work)
    if config is not None and config.is_relative_to(work.repo):
        return "ruff check and ruff format --check with the repository's ruff settings"
    return ("ruff check and ruff format --check, configured like the repository's own style "
            "settings (line length, import order, rule families)")  # fmt: skip


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
