"""``clean``: remove what the other verbs generated.

Always dist/, build/src/ (the applied trees), build/overlay/ and build/upstream-tests/; the
test venvs (never the tool venv that runs fp4stack itself) and the download cache only
when asked, since they take minutes to rebuild.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from fp4stack.stack.pins import Project

GENERATED = ("src", "overlay", "upstream-tests")  # under build/
TOOL_VENV = "tool"  # build/venv/tool: the venv fp4stack runs from (the Makefile's)


def clean(project: Project, *, envs: bool = False, cache: bool = False) -> list[Path]:
    """Remove the generated trees (and the test venvs, the cache); return those removed."""
    targets = [project.dist] + [project.build / d for d in GENERATED]
    if envs:
        targets += [p for p in (project.build / "venv").glob("*") if p.name != TOOL_VENV]
    if cache:
        targets.append(project.cache)
    removed = []
    for target in targets:
        if target.exists():
            shutil.rmtree(target)
            removed.append(target)
    return removed
