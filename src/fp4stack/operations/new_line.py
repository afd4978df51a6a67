"""``rebase``: a new line at a newer release, made from an existing line.

Two steps, so that drift's table can be shown before the series is carried over (a
conflict stops the second): :func:`plan` checks the release (newer than the line, on the
index, not a line yet), drifts the line against it and writes the report's JSON;
:func:`create` pins the release and carries the series over without what drift found
already upstream (``stack.rebase``).
"""

from __future__ import annotations

from dataclasses import dataclass

from fp4stack.operations.release_drift import drift
from fp4stack.stack.drift_report import DriftReport, write_json
from fp4stack.stack.pins import Line, Project
from fp4stack.stack.rebase import Rebased, rebase, refuse_existing
from fp4stack.stack.resolve import check_target
from fp4stack.testing.drift_behaviour import TestEnv


@dataclass(frozen=True)
class RebasePlan:
    """The line to start from, the release's pins, and drift's report against it."""

    line: Line
    target: Line
    report: DriftReport


def plan(
    project: Project,
    line: Line,
    version: str,
    *,
    run_tests: bool = True,
    test_env: TestEnv | None = None,
) -> RebasePlan:
    """Check that ``version`` can become a line, and drift ``line`` against it.

    :raises UsageError: an older release, one the index lacks, or a line that exists.
    :raises SourceError: an artifact whose sha256 is not the one the index lists.
    """
    check_target(project, line, version)
    refuse_existing(project, line, version)
    report, target = drift(project, line, version, run_tests=run_tests, test_env=test_env)
    write_json(project, report)
    return RebasePlan(line, target, report)


def create(project: Project, planned: RebasePlan) -> Rebased:
    """Make the planned line: pins, series, CHANGELOG.md, ci lists, patches applied.

    :raises PatchError: a patch conflicts; ``git am`` is left stopped on it.
    """
    return rebase(project, planned.line, planned.target, planned.report)
