"""The drift report: how each patch of a line fares against another release, and why.

The types of a report (``PatchDrift`` per patch, ``DriftReport`` for the series), the
verdict rule (behaviour first, the text where the tests give no evidence), and the report's
forms: the JSON in ``build/drift/``, the printed table, and the committed Markdown in
``docs/drift/``. The text half is ``drift_text``; the tests are run by
``testing.drift_behaviour``.
"""

from __future__ import annotations

import json
import re
import textwrap
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Literal

from packaging.version import Version

from fp4stack.core.fs import write_atomic
from fp4stack.stack.pins import Project

Text = Literal["reverse-applies", "applies", "applies-3way", "conflicts"]
Verdict = Literal["already upstream", "still needed", "applies", "conflicts"]
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
    decided_by: str = "text"  # tests | text | status


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


# "fixed differently upstream in v5.x", "Backport [0.14.0]": the release a status names
_FIXED_IN = re.compile(r"(?:fixed differently upstream in|^Backport \[)[^\]]*?\bv?(\d+)\.(\d+|x)")


def status_decides(patch: PatchDrift, status: str, release: str) -> PatchDrift:
    """``patch`` as its ``Upstream-Status`` leaves it, where no test decided: a status that
    names a release at or below ``release`` as having the fix upstream (``fixed differently
    upstream in v5.x``, ``Backport [0.14.0]``) makes it already upstream there, whatever the
    text says (a rewritten file conflicts, it does not reverse-apply)."""
    if patch.verdict == "already upstream" or patch.decided_by == "tests":
        return patch
    found = _FIXED_IN.search(status)
    if found is None:
        return patch
    major, minor = found.groups()
    if Version(release) < Version(f"{major}.{0 if minor == 'x' else minor}"):
        return patch
    evidence = f"text says {patch.verdict}, no test decided; its status: {status}"
    return replace(patch, verdict="already upstream", decided_by="status", evidence=evidence)


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
