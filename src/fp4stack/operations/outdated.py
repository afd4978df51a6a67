"""``outdated``: for each upstream, the newest release on the index against our newest line,
and for a newer release, what drift says of each of our patches there.

An upstream is *outdated* when a newer release still needs one of the newest line's patches
(drift's verdict is anything but "already upstream"): users who install that release get
the defect back, and a line is due (``fp4stack rebase``). A newer release that already has
every fix is not outdated. One index page per upstream is read on every run; drift runs only
for a release newer than our line, and its answer is kept in ``build/outdated/`` against the
line's series and the release, so a daily run that finds nothing new downloads nothing else.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from packaging.version import Version

from fp4stack.core.errors import UsageError
from fp4stack.core.fs import write_atomic
from fp4stack.core.log import log
from fp4stack.operations.release_drift import compare
from fp4stack.stack.drift_report import PatchDrift
from fp4stack.stack.pins import Line, Project
from fp4stack.stack.resolve import newest_release
from fp4stack.stack.series import stack_digest

ALREADY_UPSTREAM = "already upstream"


@dataclass(frozen=True)
class PatchVerdict:
    patch: str
    verdict: str  # drift's: already upstream, still needed, applies, conflicts
    evidence: str = ""  # where drift's text alone decided, what the patch's status says


@dataclass(frozen=True)
class UpstreamStatus:
    """One upstream: its newest release on the index against our newest line."""

    upstream: str
    distribution: str
    newest_line: str  # <upstream>@<version>
    newest_release: str  # on the index; '' when it lists no complete final release
    patches: list[PatchVerdict] = field(default_factory=list)  # for a newer release
    decided_by: str = ""  # drift's note: tests, or why the text decided
    cached: bool = False  # the drift answer came from build/outdated/

    @property
    def newer(self) -> bool:
        line_version = self.newest_line.split("@", 1)[1]
        return bool(self.newest_release) and Version(self.newest_release) > Version(line_version)

    @property
    def outdated(self) -> bool:
        """A newer release still needs one of our patches."""
        return self.newer and any(p.verdict != ALREADY_UPSTREAM for p in self.patches)

    def to_json(self) -> dict[str, object]:
        return asdict(self) | {"newer": self.newer, "outdated": self.outdated}


def outdated(
    project: Project, upstreams: list[str], *, run_tests: bool = True
) -> list[UpstreamStatus]:
    """The status of each of ``upstreams`` (all when empty), in pin order."""
    chosen = upstreams or project.upstreams
    if unknown := [u for u in chosen if u not in project.upstreams]:
        raise UsageError(f"unknown upstream {', '.join(unknown)} (upstreams: "
                         f"{', '.join(project.upstreams)})")  # fmt: skip
    return [_status(project, project.newest(up), run_tests) for up in chosen]


def _status(project: Project, line: Line, run_tests: bool) -> UpstreamStatus:
    release = newest_release(line) or ""
    status = UpstreamStatus(line.upstream, line.distribution, line.id, release)
    if not status.newer:
        log(f"{line.upstream}: newest release {release or '(none)'}, our newest line {line.id}")
        return status
    key = {"series": stack_digest(project.patches(line)), "release": release, "tests": run_tests}
    cache = project.build / "outdated" / f"{line.upstream}.json"
    if (cached := _cached(cache, key)) is not None:
        log(f"{line.upstream}: {release} is newer than {line.id}; drift answer from {cache.name}")
        patches, decided_by = cached
        return replace(status, patches=patches, decided_by=decided_by, cached=True)
    log(f"{line.upstream}: {release} is newer than {line.id}: drift")
    report = compare(project, line, release, run_tests=run_tests).report
    verdicts = [_verdict(p) for p in report.patches]
    decided_by = report.tests_note or "tests"
    answer = {"patches": [asdict(v) for v in verdicts], "decided_by": decided_by}
    cache.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(cache, json.dumps({"key": key, **answer}, indent=2) + "\n")
    return replace(status, patches=verdicts, decided_by=decided_by)


def _verdict(patch: PatchDrift) -> PatchVerdict:
    """Drift's verdict, with its evidence where the patch's status decided it."""
    evidence = patch.evidence if patch.decided_by == "status" else ""
    return PatchVerdict(patch.patch, patch.verdict, evidence)


def _cached(path: Path, key: dict[str, object]) -> tuple[list[PatchVerdict], str] | None:
    """The kept answer for ``key``: the patches' verdicts and what decided them; None when
    there is none, it was for another series or release, or it cannot be read."""
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict) or data.get("key") != key:
            return None
        return [PatchVerdict(**p) for p in data["patches"]], str(data["decided_by"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
