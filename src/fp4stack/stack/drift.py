"""How a line's patches meet another release's pristine tree, by their text.

In a scratch repository holding the target release's pristine tree (plus the line's own
pristine objects, so ``git am -3`` has the bases), each patch of the series, in order:

- reverse-applies: the release already holds the change (``git apply --check -R``);
- applies: ``git apply --check``, then committed so later patches see it;
- applies-3way: only with ``git am -3``;
- conflicts: neither; the files and hunks ``git apply --reject`` leaves are named.

This is the text half of ``drift``; the tests decide (see ``testing.drift``), and
``tree_without`` gives them the target's tree with every patch but one applied. The report
types, the verdict rule, and the report's JSON, table and Markdown forms live here too.
"""

from __future__ import annotations

import json
import re
import textwrap
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
NOT_RUNNABLE = "not runnable"  # the tests cannot be collected there: no evidence either way


@dataclass(frozen=True)
class PatchDrift:
    """One patch against the target release."""

    patch: str
    subject: str
    text: Text
    conflicts: dict[str, list[str]] = field(default_factory=dict)  # file -> hunk headers
    tests: tuple[str, ...] = ()
    # on the target's pristine code: pass | fail | mixed | skip | not runnable | not run
    tested: str = "not run"
    # the same tests with every other patch of the series applied (run only when pristine
    # did not pass): pass | fail | mixed | skip | not runnable | not run
    tested_with_others: str = "not run"
    evidence: str = ""  # why the verdict: a collection error, a leave-one-out result, …
    verdict: Verdict = "applies"
    decided_by: str = "text"  # tests | text


@dataclass(frozen=True)
class DriftReport:
    """Every patch of ``line`` against ``target``, and how the verdicts were reached."""

    line: str
    target: str
    distribution: str
    patches: list[PatchDrift]
    tests_note: str = ""
    env_note: str = ""  # which pins made the test env

    @classmethod
    def from_json(cls, text: str) -> DriftReport:
        """The report ``write_json`` wrote."""
        data = json.loads(text)
        patches = [
            PatchDrift(**{**p, "tests": tuple(p.get("tests", ()))}) for p in data.pop("patches")
        ]
        return cls(patches=patches, **data)

    @property
    def stem(self) -> str:
        upstream, _, old = self.line.partition("@")
        return f"{upstream}-{old}-to-{self.target.partition('@')[2]}"


def verdict(text: Text, tested: str, with_others: str = "not run") -> tuple[Verdict, str]:
    """The verdict and what decided it.

    Behaviour decides when the tests ran: pass on the target's pristine code means already
    upstream. A failure there is read again with every other patch applied (so a test that
    fails for another patch's defect, or needs an earlier patch, is not taken for this
    patch's): pass there means the release has this fix, fail means still needed. Tests that
    cannot even be collected (``not runnable``: a module moved, an import failed), skip, or
    give mixed results are no evidence, and the text decides (reverse-applies = already
    upstream).
    """
    if tested == "pass":
        return "already upstream", "tests"
    if tested in ("fail", NOT_RUNNABLE) and with_others in ("pass", "fail"):
        return ("already upstream" if with_others == "pass" else "still needed"), "tests"
    if tested == "fail" and with_others == "not run":
        return "still needed", "tests"
    if text == "reverse-applies":
        return "already upstream", "text"
    return ("conflicts" if text == "conflicts" else "applies"), "text"


def text_drift(project: Project, line: Line, target: Line) -> list[PatchDrift]:
    """Classify each patch of ``line``'s series against ``target``'s pristine tree."""
    with stage(PatchError, f"{line.id}: cannot compare the series with {target.id}"):
        apply(project, line)
        scratch = scratch_repo(project, target)
        sources.import_pristine(project, target, scratch)
        fetch_base(scratch, project.src(line))
        git.git(scratch, "checkout", "-q", "-f", "-B", "drift", sources.UPSTREAM_BRANCH)
        return [_classify(scratch, path) for path in series_paths(project.patches(line))]


def scratch_repo(project: Project, target: Line) -> Path:
    """The scratch repository ``text_drift`` made for ``target``."""
    return project.build / "drift" / "src" / target.id


def tree_without(repo: Path, patches: list[Path], left_out: str) -> tuple[str, list[str]]:
    """A branch of ``repo``'s pristine tree with every patch but ``left_out`` applied (those
    that apply, in series order, with ``git am -3``); its ref and the patches it holds."""
    branch = f"drift-without/{left_out.removesuffix('.patch')}"
    git.git(repo, "checkout", "-q", "-f", "-B", branch, sources.UPSTREAM_BRANCH)
    held = []
    for path in patches:
        if path.name == left_out:
            continue
        if git.git(repo, "am", "--keep-cr", "-q", "-3", str(path), check=False).ok:
            held.append(path.name)
        else:
            git.git(repo, "am", "--abort", check=False)
    return f"refs/heads/{branch}", held


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


def render_table(report: DriftReport) -> str:
    """One row per patch: text, tests on pristine, tests with the other patches, verdict and
    what decided it; then each conflict's hunks, each patch's evidence and the notes."""
    rows = [("patch", "text", "tests", "with others", "verdict", "by")]
    rows += [(p.patch, p.text, p.tested, p.tested_with_others, p.verdict, p.decided_by)
             for p in report.patches]  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [f"{report.line} -> {report.target}"]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
              for row in rows]  # fmt: skip
    for p in report.patches:
        for file, hunks in p.conflicts.items():
            lines.append(f"{p.patch}: conflicts in {file}: {', '.join(hunks) or 'rejected'}")
    for p in report.patches:
        if p.evidence:
            lines.append(f"{p.patch}: {p.evidence}")
    if report.env_note:
        lines.append(f"env: {report.env_note}")
    if report.tests_note:
        lines.append(f"tests: {report.tests_note}")
    return "\n".join(lines)


def render_markdown(report: DriftReport) -> str:
    """The committed report: the printed table, and what each column means."""
    version = report.target.partition("@")[2]
    intro = (
        f"Written by `fp4stack drift {report.line} {version} --report` (from "
        f"`{report.stem}.json` beside it); do not edit by hand. Behaviour decides: a "
        "patch whose `Test:`s pass on the release's pristine code is already upstream. One "
        "whose tests fail there, or cannot be collected there, is tested again with every "
        "other patch of the series applied (`with others`), so a failure that belongs to "
        "another patch, or a test that needs an earlier patch, is not read as this one's: "
        "pass there means already upstream, fail means still needed. Tests that cannot run "
        "either way are no evidence: the text decides (`by text`; reverse-applies = already "
        "upstream) and the patch's line below says why."
    )
    lines = [
        f"# Drift: {report.line} against {report.distribution} {version}",
        "",
        textwrap.fill(intro, width=92, break_long_words=False, break_on_hyphens=False),
        "",
        "```text",
        render_table(report),
        "```",
    ]
    for p in report.patches:
        if p.conflicts:
            lines += ["", f"## {p.patch}: conflicts", ""]
            lines += [f"- `{f}`: {', '.join(h) or 'rejected'}" for f, h in p.conflicts.items()]
    return "\n".join(lines) + "\n"


def write_markdown(project: Project, report: DriftReport) -> Path:
    """``docs/drift/<upstream>-<from>-to-<to>.md``, and the JSON it was made from beside it."""
    path = project.root / "docs" / "drift" / f"{report.stem}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path.with_suffix(".json"), json.dumps(asdict(report), indent=1) + "\n")
    write_atomic(path, render_markdown(report))
    return path
