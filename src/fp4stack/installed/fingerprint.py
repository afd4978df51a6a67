"""Is a patch in the installed code? Read from the patch itself, hunk by hunk.

For every hunk of a file the wheel installs, the hunk's patched text (context and added
lines) found in the installed file means applied; its pristine text (context and removed
lines) found means not applied. All hunks applied: the defect is fixed; none: the code is
the pristine release's; anything else: the code is neither (another release, or edited),
and the verdict is unknown. The version number plays no part.

A later patch of the same series may rewrite lines an earlier one added, so a hunk whose
patched and pristine texts are both absent is judged by its distinctive lines (at least
:data:`DISTINCTIVE` characters, so that a line such as ``return x`` decides nothing): all of
those it adds present, and not all of those it removes, is applied; not all it adds, and
all it removes (or it removes none), is not. Lines a later patch of the series removes are
not expected (and lines it adds back are not refused); a hunk left with nothing to look for
was superseded, and is not counted.
Lines an earlier patch added are not expected in pristine code either: a hunk that rewrites
them is judged by what it adds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from fp4stack.build.metadata import SDIST_METADATA
from fp4stack.installed.probe import Installed

Status = Literal["fixed", "affected", "unknown"]
_DIFF = re.compile(r"^diff --git a/(\S+) b/(\S+)$")
_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+\d+(?:,\d+)? @@")
_DIST_INFO = re.compile(r"^[^/]+\.dist-info/")
DISTINCTIVE = 16


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
    """Where a patched source path lives in the installed distribution; None if not shipped.
    An sdist's PKG-INFO is the installed METADATA (its dependency fields: ``build.metadata``)."""
    if path == SDIST_METADATA:
        return dist.dist_info / "METADATA"
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


@dataclass(frozen=True)
class Later:
    """Lines the later patches of the series remove and add, and the lines the earlier ones
    add (stripped): a pristine install has none of the latter."""

    removed: frozenset[str] = frozenset()
    added: frozenset[str] = frozenset()
    earlier_added: frozenset[str] = frozenset()


def _changes(diffs: list[list[FileDiff]]) -> tuple[set[str], set[str]]:
    removed: set[str] = set()
    added: set[str] = set()
    for files in diffs:
        for diff in files:
            for hunk in diff.hunks:
                old, new = {x.strip() for x in hunk.old}, {x.strip() for x in hunk.new}
                removed |= old - new
                added |= new - old
    return removed, added


def _later(diffs: list[list[FileDiff]], index: int) -> Later:
    removed, added = _changes(diffs[index + 1 :])
    _, earlier = _changes(diffs[:index])
    return Later(frozenset(removed), frozenset(added), frozenset(earlier))


def _superseded(hunk: Hunk, later: Later) -> bool:
    old, new = {ln.strip() for ln in hunk.old}, {ln.strip() for ln in hunk.new}
    added = {ln for ln in new - old if ln}
    return bool(added) and added <= later.removed


def _by_lines(hunk: Hunk, lines: set[str], later: Later) -> str:
    """ "applied", "missing" or "other" from the hunk's distinctive lines."""
    old = {ln.strip() for ln in hunk.old}
    new = {ln.strip() for ln in hunk.new}
    added = {ln for ln in new - old - later.removed if len(ln) >= DISTINCTIVE}
    removed = {ln for ln in old - new - later.added - later.earlier_added if len(ln) >= DISTINCTIVE}
    all_added = bool(added) and added <= lines
    all_removed = bool(removed) and removed <= lines
    if all_added and not all_removed:
        return "applied"
    if (added or removed) and not all_added and (all_removed or not removed):
        return "missing"
    return "other"


def _read(path: Path, metadata: bool) -> str | None:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    lines = [ln.rstrip() for ln in lines if not (metadata and ln.startswith("Version:"))]
    return "\n" + "\n".join(lines) + "\n"


def check_series(
    patches: list[Path], package_root: str, dist: Installed
) -> list[tuple[Status, str]]:
    """For each patch of a series, in order: whether it is in the installed ``dist``."""
    diffs = [parse_diff(p.read_text(encoding="utf-8", errors="replace")) for p in patches]
    return [_check(files, _later(diffs, i), package_root, dist) for i, files in enumerate(diffs)]


def _check(
    files: list[FileDiff], later: Later, package_root: str, dist: Installed
) -> tuple[Status, str]:
    applied = missing = other = superseded = 0
    for diff in files:
        target = _installed_path(diff.path, package_root, dist)
        if target is None:
            continue
        metadata = target.parent == dist.dist_info
        text = _read(target, metadata)
        lines = {ln.strip() for ln in text.split("\n")} if text is not None else set()
        for hunk in diff.hunks:
            if text is None:
                verdict = "missing" if diff.created else "other"
            elif _block_in(hunk.new, text, metadata):
                verdict = "applied"
            elif _block_in(hunk.old, text, metadata):
                verdict = "missing"
            elif _superseded(hunk, later):
                verdict = "superseded"
            else:
                verdict = _by_lines(hunk, lines, later)
            applied += verdict == "applied"
            missing += verdict == "missing"
            other += verdict == "other"
            superseded += verdict == "superseded"
    total = applied + missing + other
    note = f", {superseded} rewritten by a later patch" if superseded else ""
    if total == 0:
        return "unknown", "the patch changes no file this distribution installs" + note
    counts = f"{applied}/{total} hunks present{note}"
    if applied == total:
        return "fixed", f"code fingerprint: {counts}"
    if missing == total:
        return "affected", f"code fingerprint: pristine code, {counts}"
    return "unknown", f"code fingerprint: neither pristine nor patched ({counts})"
