"""``fp4stack doctor CHECKPOINT``: the checkpoint's own findings, then what every line we carry
does with it, computed from the lines and their patches' ``Affects:`` trailers."""

from __future__ import annotations

from pathlib import Path

from fp4stack.checkpoint.doctor.diagnose import diagnose
from fp4stack.checkpoint.doctor.findings import ConsumerVerdict, Report
from fp4stack.stack.affects import line_verdicts
from fp4stack.stack.pins import Project

NO_CHECKOUT = ConsumerVerdict(
    "fp4stack's release lines",
    "unknown",
    "no fp4stack checkout here to read the lines from: run inside one, or set FP4STACK_ROOT",
)


def diagnose_checkpoint(root: Path, project: Project | None, headers_only: bool = False) -> Report:
    """The doctor's report for the checkpoint at ``root``, with a verdict for every line of
    every upstream that reads its format: repairs first, then the lines, oldest release of
    each upstream first, then the cast. Without a ``project`` (no checkout) the lines are
    one ``unknown`` row. :raises UsageError: not a checkpoint we can read."""
    report = diagnose(root, headers_only=headers_only)
    if report.profile is None:
        return report
    lines = [
        ConsumerVerdict(v.consumer, v.verdict, v.detail, v.patches, v.command)
        for v in line_verdicts(project, report.profile)
    ] if project else [NO_CHECKOUT]  # fmt: skip
    fixes = [c for c in report.consumers if c.verdict == "needs-fix"]
    rest = [c for c in report.consumers if c.verdict != "needs-fix"]
    report.consumers = [*fixes, *lines, *rest]
    return report
