"""``lint``: each chosen line's series checked, then (when clean) re-exported as a dry run.

The headers and the series file are ``stack.lint``'s; a stack that passes them is applied
and must come out of a re-export unchanged (``stack.refresh.stale``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fp4stack.stack.apply import apply
from fp4stack.stack.lint import lint_series
from fp4stack.stack.pins import Line, Project
from fp4stack.stack.refresh import stale


@dataclass(frozen=True)
class LintRun:
    """The stacks checked and every problem found, one line of text each."""

    lines: list[Line]
    problems: list[str]


def lint_lines(project: Project, names: Sequence[str], *, export_check: bool = True) -> LintRun:
    """Lint the series of each line named (lines or upstreams; none: all).

    :param export_check: False: skip the re-export dry run (needs no download).
    """
    lines = project.select(list(names))
    problems: list[str] = []
    for line in lines:
        found = lint_series(project, line)
        if not found and export_check:
            apply(project, line)
            found = [f"{line.patch_dir}/{n}: a re-export would change it; run "
                     "`make refresh`" for n in stale(project, line)]  # fmt: skip
        problems += found
    return LintRun(lines, problems)
