"""``apply`` and ``refresh``: the maintainer's loop between patches/ and build/src/<line>/.

``apply`` materializes each chosen line's tree with its series applied; ``refresh``
exports the commits made there back to the series (or, as a check, names the patches an
export would change).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fp4stack.stack.apply import apply
from fp4stack.stack.pins import Line, Project
from fp4stack.stack.refresh import refresh, stale


@dataclass(frozen=True)
class Export:
    """One line's export: the patch files it changed (or, as a check, would change)."""

    line: Line
    changed: list[str]


def apply_lines(project: Project, names: Sequence[str], *, force: bool = False) -> list[Line]:
    """Apply the series of each line named (lines or upstreams; none: all), in order.

    :raises PatchError: a patch does not apply, or unexported work would be lost (unless
        ``force``).
    """
    lines = project.select(list(names))
    for line in lines:
        apply(project, line, force=force)
    return lines


def refresh_lines(project: Project, names: Sequence[str], *, check: bool = False) -> list[Export]:
    """Export each named line's commits to its series; with ``check``, change nothing and
    only say which patch files an export would change."""
    return [
        Export(line, stale(project, line) if check else refresh(project, line))
        for line in project.select(list(names))
    ]
