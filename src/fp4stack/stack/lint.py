"""Patch-stack lint: every patch says why it exists, when it can go, and what proves it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from fp4stack.stack import pr
from fp4stack.stack.affects import lint_affects
from fp4stack.stack.pins import Line, Project
from fp4stack.stack.series import SERIES, PatchInfo, parse_patch, read_series

STATUS = re.compile(r"^(Backport|Submitted|Pending|Inappropriate) \[(.+)\]$")
URL = re.compile(r"^https?://\S+$")
VERSION = re.compile(r"^v?\d+(\.\d+)*\S*$")
# ``Backport [version]`` means our diff is upstream's own fix: cite the commit it came from.
COMMIT = re.compile(r"^https://github\.com/[\w.-]+/[\w.-]+/commit/[0-9a-f]{7,40}$")
# Our own fix for a defect upstream fixed another way: the status names where upstream did.
FIXED_DIFFERENTLY = "fixed differently upstream in "
REFERENCE = re.compile(r"([\w.-]+/[\w.-]+)?#\d+|https?://\S+|\b[0-9a-f]{7,40}\b|\bv?\d+\.(\d+|x)")


def lint_series(project: Project, line: Line) -> list[str]:
    """Problems with ``patches/<upstream>/<version>/``: series/file mismatches and bad headers."""
    patch_dir = project.patches(line)
    rel = patch_dir.relative_to(project.root)
    names = read_series(patch_dir)
    problems = [f"{rel}/{SERIES}: lists {n}, which does not exist"
                for n in names if not (patch_dir / n).is_file()]  # fmt: skip
    problems += [f"{rel}/{p.name}: not listed in {rel}/{SERIES}"
                 for p in sorted(patch_dir.glob("*.patch")) if p.name not in names]  # fmt: skip
    for name in names:
        if (patch_dir / name).is_file():
            info = parse_patch(patch_dir / name)
            problems += [f"{rel}/{name}: {m}" for m in lint_patch(info, project.root)]
            if pr.base_line(project, line, info) == line:
                problems += [f"{rel}/{name}: {m}" for m in pr.form_problems(project, line, info)]
    return problems


def lint_patch(info: PatchInfo, root: Path) -> list[str]:
    """Problems with one patch's header."""
    problems = []
    if not info.subject:
        problems.append("no Subject")
    if len(info.description.split()) < 8:
        problems.append("no description of why the patch exists (a paragraph before the trailers)")
    problems += _status_problems(info.trailer("Upstream-Status"))
    problems += _commit_problems(info)
    bugs = info.trailer("Bug")
    if not bugs:
        problems.append("no `Bug:` link")
    problems += [f"Bug: {b!r} is not a URL" for b in bugs if not URL.match(b)]
    tests = info.trailer("Test")
    if not tests:
        problems.append("no `Test:` naming the regression test that proves it")
    problems += [p for t in tests if (p := _test_problem(t, root))]
    problems += lint_affects(info)
    if not info.files:
        problems.append("changes no file")
    return problems


def _status_problems(values: list[str]) -> list[str]:
    if len(values) != 1:
        return ["needs exactly one `Upstream-Status:` (Backport [version], Submitted [url], "
                "Pending [why] or Inappropriate [why])"]  # fmt: skip
    match = STATUS.match(values[0])
    if not match:
        return [f"Upstream-Status: {values[0]!r} is not Backport/Submitted/Pending/Inappropriate "
                "[...]"]  # fmt: skip
    kind, detail = match.groups()
    if kind == "Submitted" and not URL.match(detail):
        return [f"Upstream-Status: Submitted needs a URL, got {detail!r}"]
    if kind == "Backport" and not VERSION.match(detail):
        return [f"Upstream-Status: Backport needs the upstream version, got {detail!r}"]
    return []


def _commit_problems(info: PatchInfo) -> list[str]:
    status = (info.trailer("Upstream-Status") or [""])[0]
    commits = info.trailer("Upstream-Commit")
    problems = [f"Upstream-Commit: {c!r} is not https://github.com/<owner>/<repo>/commit/<hash>"
                for c in commits if not COMMIT.match(c)]  # fmt: skip
    if status.startswith("Backport") and not commits:
        problems.append("Backport needs `Upstream-Commit:` citing the upstream commit it takes "
                        "(our own fix for a defect upstream fixed otherwise is `Inappropriate "
                        "[fixed differently upstream in <ref>]`)")  # fmt: skip
    if FIXED_DIFFERENTLY in status:
        ref = status.split(FIXED_DIFFERENTLY, 1)[1]
        if not REFERENCE.search(ref):
            problems.append("Upstream-Status: `fixed differently upstream in <ref>` needs a "
                            "PR (owner/repo#n), commit or URL as <ref>")  # fmt: skip
    return problems


def _test_problem(test: str, root: Path) -> str | None:
    """Check that ``path::[Class::]function`` exists in this checkout."""
    path, *names = test.split("::")
    file = root / path
    if not file.is_file():
        return f"Test: {path} does not exist"
    if not names:
        return None
    tree = ast.parse(file.read_text(), filename=str(file))
    scope: list[ast.stmt] = tree.body
    for name in names:
        bare = name.split("[", 1)[0]
        found = next((n for n in scope if getattr(n, "name", None) == bare), None)
        if found is None:
            return f"Test: {test}: no {bare} in {path}"
        scope = getattr(found, "body", [])
    return None
