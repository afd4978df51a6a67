"""How a line's patches meet another release's pristine tree, by their text.

In a scratch repository holding the target release's pristine tree (plus the line's own
pristine objects, so ``git am -3`` has the bases), each patch of the series, in order:

- reverse-applies: the release already holds the change (``git apply --check -R``);
- applies: ``git apply --check``, then committed so later patches see it;
- applies-3way: only with ``git am -3``;
- conflicts: neither; the files and hunks ``git apply --reject`` leaves are named.

This is the text half of ``drift``; the tests decide (see ``testing.drift``). The report
types and their JSON and Markdown forms live here too.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from fp4stack.core import git
from fp4stack.core.errors import PatchError, stage
from fp4stack.core.fs import write_atomic
from fp4stack.stack import sources
from fp4stack.stack.apply import apply
from fp4stack.stack.pins import Line, Project
from fp4stack.stack.series import parse_patch, series_paths

Text = Literal["reverse-applies", "applies", "applies-3way", "conflicts"]
Verdict = Literal["already upstream", "still needed", "applies", "conflicts"]
BASE_REF = "refs/fp4stack/line-base"


@dataclass(frozen=True)
class PatchDrift:
    """One patch against the target release."""

    patch: str
    subject: str
    text: Text
    conflicts: dict[str, list[str]] = field(default_factory=dict)  # file -> hunk headers
    tests: tuple[str, ...] = ()
    tested: str = "not run"  # pass | fail | mixed | skip | not run, on the target's pristine
    verdict: Verdict = "applies"


@dataclass(frozen=True)
class DriftReport:
    """Every patch of ``line`` against ``target``, and how the verdicts were reached."""

    line: str
    target: str
    distribution: str
    patches: list[PatchDrift]
    tests_note: str = ""

    @property
    def stem(self) -> str:
        upstream, _, old = self.line.partition("@")
        return f"{upstream}-{old}-to-{self.target.partition('@')[2]}"


def verdict(text: Text, tested: str) -> Verdict:
    """Behaviour decides when the tests ran on the target's pristine code; else the text."""
    if tested == "pass":
        return "already upstream"
    if tested == "fail":
        return "still needed"
    if text == "reverse-applies":
        return "already upstream"
    return "conflicts" if text == "conflicts" else "applies"


def text_drift(project: Project, line: Line, target: Line) -> list[PatchDrift]:
    """Classify each patch of ``line``'s series against ``target``'s pristine tree."""
    with stage(PatchError, f"{line.id}: cannot compare the series with {target.id}"):
        apply(project, line)
        scratch = project.build / "drift" / "src" / target.id
        sources.import_pristine(project, target, scratch)
        fetch_base(scratch, project.src(line))
        git.git(scratch, "checkout", "-q", "-f", "-B", "drift", sources.UPSTREAM_BRANCH)
        return [_classify(scratch, path) for path in series_paths(project.patches(line))]


def fetch_base(repo: Path, line_repo: Path) -> None:
    """Bring the line's pristine commit into ``repo``, so 3-way merges find the bases."""
    git.git(repo, "fetch", "-q", "--no-tags", str(line_repo),
            f"+{sources.UPSTREAM_BRANCH}:{BASE_REF}")  # fmt: skip


def _classify(repo: Path, path: Path) -> PatchDrift:
    subject = parse_patch(path).subject
    if git.git(repo, "apply", "--check", "-R", str(path), check=False).ok:
        return PatchDrift(path.name, subject, "reverse-applies")
    if git.git(repo, "apply", "--check", str(path), check=False).ok:
        git.git(repo, "am", "--keep-cr", "-q", str(path))
        return PatchDrift(path.name, subject, "applies")
    if git.git(repo, "am", "--keep-cr", "-q", "-3", str(path), check=False).ok:
        return PatchDrift(path.name, subject, "applies-3way")
    git.git(repo, "am", "--abort", check=False)
    return PatchDrift(path.name, subject, "conflicts", rejected_hunks(repo, path))


def rejected_hunks(repo: Path, path: Path) -> dict[str, list[str]]:
    """File -> the hunk headers of ``path`` that do not apply to ``repo``'s work tree
    (a missing file is named with ``file missing``); the work tree is reset afterwards."""
    result = git.git(repo, "apply", "--reject", str(path), check=False)
    hunks: dict[str, list[str]] = {}
    for missing in re.findall(r"error: (\S+): (?:No such file|does not exist)", result.stdout):
        hunks[missing] = ["file missing"]
    for rej in sorted(repo.rglob("*.rej")):
        name = str(rej.relative_to(repo).with_suffix(""))
        hunks[name] = re.findall(r"^(@@ [^@]* @@)", rej.read_text(errors="replace"), re.M)
    git.git(repo, "reset", "-q", "--hard")
    git.git(repo, "clean", "-q", "-f", "-d", "-x")
    return hunks


def write_json(project: Project, report: DriftReport) -> Path:
    """``build/drift/<upstream>-<from>-to-<to>.json``."""
    path = project.build / "drift" / f"{report.stem}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(asdict(report), indent=1) + "\n")
    return path


def write_markdown(project: Project, report: DriftReport, table: str) -> Path:
    """``docs/drift/<upstream>-<from>-to-<to>.md``: the table and every conflict's hunks."""
    path = project.root / "docs" / "drift" / f"{report.stem}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        f"# Drift: {report.line} against {report.distribution} {report.target.partition('@')[2]}",
        "",
        f"Written by `fp4stack drift {report.line} {report.target.partition('@')[2]} "
        "--report`. Behaviour decides: a patch whose `Test:`s pass on the release's pristine "
        "code is already upstream, one whose tests fail there is still needed; without a "
        "test run the text decides (reverse-applies = already upstream).",
        "",
        f"Tests: {report.tests_note or 'run on the pristine release'}",
        "",
        "```text",
        table,
        "```",
    ]
    for p in report.patches:
        if p.conflicts:
            lines += ["", f"## {p.patch}: conflicts", ""]
            lines += [f"- `{f}`: {', '.join(h) or 'rejected'}" for f, h in p.conflicts.items()]
    write_atomic(path, "\n".join(lines) + "\n")
    return path
