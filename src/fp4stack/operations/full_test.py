"""``test``: every chosen line's upstream suite, our tests and proofs, and our tool tests.

The lines run side by side (``testing.jobs``); the counts of each upstream suite are
recorded for ``pr``'s texts (``testing.suites.write_records``); :func:`green` is the rule
that makes the run pass or fail.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fp4stack.core.errors import UsageError
from fp4stack.stack.pins import Project
from fp4stack.testing import jobs as side_by_side
from fp4stack.testing import suites
from fp4stack.testing.suites import Outcome


@dataclass(frozen=True)
class FullTestRun:
    """What each job (a line, or our tool tests) gave, in the order the lines were named."""

    outcomes: list[Outcome]

    @property
    def green(self) -> bool:
        return green(self.outcomes)


def run(
    project: Project, names: Sequence[str], *, tools: bool = True, jobs: int | None = None
) -> FullTestRun:
    """Test each line named (lines or upstreams; none: all), and our tool tests when
    ``tools`` and no line is named.

    :param jobs: how many lines at once (None: one per CPU core; 1: in turn, output live).
    :raises UsageError: an unknown line, or ``jobs`` below 1.
    """
    lines = project.select(list(names))
    if jobs is not None and jobs < 1:
        raise UsageError(f"--jobs must be 1 or more, not {jobs}")
    outcomes = side_by_side.run_all(
        project, lines, tools=tools and not names, jobs=jobs or side_by_side.default_jobs()
    )
    suites.write_records(project, [o for o in outcomes if o.has_upstream])
    return FullTestRun(outcomes)


def green(outcomes: list[Outcome]) -> bool:
    """Pass: some test passed, no pytest run failed (or collected nothing), every patch is
    proven."""
    results = [r for o in outcomes for r in (o.suite, o.ours) if r]
    proofs = [p for o in outcomes for p in o.proofs]
    ran = sum(r.count("passed") for r in results)
    return ran > 0 and all(r.ok for r in results) and all(p.proven for p in proofs)
