"""``wheel``: each chosen line's series applied, and its patched wheel built into dist/."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fp4stack.build.wheel import build_wheel
from fp4stack.stack.apply import apply
from fp4stack.stack.pins import Project


def build_wheels(project: Project, names: Sequence[str]) -> list[Path]:
    """The patched wheel of each line named (lines or upstreams; none: all), in order.

    :raises PatchError: a series does not apply.
    :raises BuildError: a wheel cannot be repacked.
    """
    wheels = []
    for line in project.select(list(names)):
        apply(project, line)
        wheels.append(build_wheel(project, line))
    return wheels
