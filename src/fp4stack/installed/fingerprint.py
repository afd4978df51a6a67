"""Is a patch in the installed code? Read from the patch itself, hunk by hunk.

For every hunk of a file the wheel installs, the hunk's patched text (context and added
lines) found in the installed file means applied; its pristine text (context and removed
lines) found means not applied. All hunks applied: the defect is fixed; none: the code is
the pristine release's; anything else: the code is neither (another release, or edited),
and the verdict is unknown. The version number plays no part.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from fp4stack.installed.probe import Installed

Status = Literal["fixed", "affected", "unknown"]
_DIFF = re.compile(r"^diff --git a/(\S+) b/(\S+)$")
_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+\d+(?:,\d+)? @@")
_DIST_INFO = re.compile(r"^[^/]+\.dist-info/")


@dataclass
class Hunk:
    old: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)


@dataclass
class FileDiff:
    path: str
    created: bool = False
    hunks: list[Hunk] = field(default_factory=list)


def parse_diff(text: str) -> list[FileDiff]:
    """The files and hunks of a ``git format-patch`` file."""
    files: list[FileDiff] = []
    hunk: Hunk | None = None
    for line in text.splitlines():
        match = _DIFF.match(line)
        if match:
            files.append(FileDiff(match[2]))
            hunk = None
        elif not files:
            continue
        elif line.startswith("--- /dev/null"):
            files[-1].created = True
        elif _HUNK.match(line):
            hunk = Hunk()
            files[-1].hunks.append(hunk)
        elif hunk is not None and line[:1] in (" ", "-", "+"):
            text_line = line[1:].rstrip()
            if line[0] != "+":
                hunk.old.append(text_line)
            if line[0] != "-":
                hunk.new.append(text_line)
        elif line.startswith("-- ") and hunk is not None:
            hunk = None  # the signature separator ends the last hunk
    return files


def _installed_path(path: str, package_root: str, dist: Installed) -> Path | None:
    """Where a patched source path lives in the installed distribution; None if not shipped."""
    rel = path.removeprefix(f"{package_root}/") if package_root else path
    if package_root and rel == path:
        return None  # outside the package root: tests, docs
    if _DIST_INFO.match(rel):
        return dist.dist_info / rel.split("/", 1)[1]
    if rel.split("/")[0] not in dist.top_level:
        return None
    return dist.site / rel


def _block_in(block: list[str], text: str, metadata: bool) -> bool:
    if metadata:  # the patched wheel's METADATA says Version: <version>+fp4stack.<id>
        block = [b for b in block if not b.startswith("Version:")]
    if not block:
        return True
    return "\n" + "\n".join(block) + "\n" in text


def _read(path: Path, metadata: bool) -> str | None:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    lines = [ln.rstrip() for ln in lines if not (metadata and ln.startswith("Version:"))]
    return "\n" + "\n".join(lines) + "\n"


def check_patch(patch: Path, package_root: str, dist: Installed) -> tuple[Status, str]:
    """Whether ``patch`` is in the installed ``dist``, and a short why."""
    applied = missing = other = 0
    for diff in parse_diff(patch.read_text(encoding="utf-8", errors="replace")):
        target = _installed_path(diff.path, package_root, dist)
        if target is None:
            continue
        metadata = target.parent == dist.dist_info
        text = _read(target, metadata)
        for hunk in diff.hunks:
            if text is None:
                missing += diff.created
                other += not diff.created
            elif _block_in(hunk.new, text, metadata):
                applied += 1
            elif _block_in(hunk.old, text, metadata):
                missing += 1
            else:
                other += 1
    total = applied + missing + other
    if total == 0:
        return "unknown", "the patch changes no file this distribution installs"
    counts = f"{applied}/{total} hunks present"
    if applied == total:
        return "fixed", f"code fingerprint: {counts}"
    if missing == total:
        return "affected", f"code fingerprint: pristine code, {counts}"
    return "unknown", f"code fingerprint: neither pristine nor patched ({counts})"
