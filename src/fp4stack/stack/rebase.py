"""``rebase``: create a new line from an existing one, at a newer release.

It pins the release (tag, commit when the submodule has it, artifacts with the sha256 the
index gives) in a textual copy of the line's pins tables, comments kept, appended after the
upstream's last table; copies the series (its comments in place), drops the patches
``drift`` found upstream (recording each in the new line's CHANGELOG.md with the release
that shipped it) and applies the rest with
``git am -3`` onto the new pristine tree in ``build/src/<upstream>@<version>``. On success
the patches are re-exported against the new tree (``refresh``). A conflict stops ``git am``
where ``git am --continue`` and then ``make refresh UPSTREAM=<upstream>@<version>`` finish.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

from fp4stack.core import git
from fp4stack.core.errors import CommandError, PatchError, UsageError, stage
from fp4stack.core.fs import write_atomic
from fp4stack.core.log import log
from fp4stack.stack import sources
from fp4stack.stack.apply import State, write_state
from fp4stack.stack.drift_report import DriftReport, PatchDrift
from fp4stack.stack.drift_text import fetch_base
from fp4stack.stack.pins import PINS, Line, Project, load_project
from fp4stack.stack.refresh import refresh
from fp4stack.stack.series import SERIES, parse_patch, read_series, write_series

CHANGELOG = "CHANGELOG.md"
PENDING = "rebase-pending"
UNKNOWN_COMMIT = "unknown here: fill in from `git ls-remote <git> <tag>`"


@dataclass(frozen=True)
class Rebased:
    """What a rebase made: the new line, the patches kept and those dropped."""

    line: Line
    kept: list[str]
    dropped: list[str]


def refuse_existing(project: Project, line: Line, version: str) -> None:
    """A line that exists already (pinned, or its patch dir on disk) is not recreated."""
    new_id = f"{line.upstream}@{version}"
    patch_dir = project.root / "patches" / line.upstream / version
    if new_id in project.lines or patch_dir.exists():
        raise UsageError(
            f"{new_id} exists already ({PINS} or {patch_dir.relative_to(project.root)})",
            hint=f"work on it with `make apply UPSTREAM={new_id}`, or remove it first",
        )


def rebase(project: Project, line: Line, target: Line, report: DriftReport) -> Rebased:
    """Create ``target`` as a line: pins, series without the patches ``report`` calls
    already upstream, and the rest applied with ``git am -3``.

    :raises PatchError: when a patch conflicts; ``git am`` is left stopped on it.
    """
    refuse_existing(project, line, target.version)
    dropped = [p for p in report.patches if p.verdict == "already upstream"]
    drop_names = {p.patch for p in dropped}
    kept = [n for n in read_series(project.patches(line)) if n not in drop_names]
    _write_pins(project, line, target)
    _write_series(project, line, target, kept)
    _write_changelog(project, line, target, report, drop_names)
    _copy_ci_lists(project, line, target)
    project = load_project(project.root)
    new = project.lines[target.id]
    _apply_3way(project, line, new, kept)
    refresh(project, new)
    log(f"{new.id}: {len(kept)} patches kept, {len(dropped)} dropped as already upstream")
    return Rebased(new, kept, sorted(drop_names))


def _apply_3way(project: Project, line: Line, new: Line, kept: list[str]) -> None:
    repo = project.src(new)
    with stage(PatchError, f"{new.id}: cannot prepare {repo}"):
        sources.import_pristine(project, new, repo)
        fetch_base(repo, project.src(line))
        git.git(repo, "checkout", "-q", "-f", "-B", sources.PATCHED_BRANCH,
                sources.UPSTREAM_BRANCH)  # fmt: skip
        # A state, so `refresh` accepts the tree once a stopped `git am` is finished.
        write_state(repo, State(PENDING, "", sources.source_identity(project, new)))
    patches = [str(project.patches(new) / name) for name in kept]
    if not patches:
        return
    try:
        git.git(repo, "am", "--keep-cr", "--quiet", "-3", *patches)
    except CommandError as error:
        stopped = re.search(r"Patch failed at (\d+)", error.output)
        name = kept[int(stopped.group(1)) - 1] if stopped else "a patch"
        files = git.query(repo, "diff", "--name-only", "--diff-filter=U").split()
        raise PatchError(
            f"{new.patch_dir}/{name} conflicts with {new.distribution} {new.version}"
            + (f" (files: {', '.join(files)})" if files else ""),
            hint=f"resolve it in {repo}, `git add` the files, run `git -C {repo} am --continue`"
            f", then `make refresh UPSTREAM={new.id}`",
        ) from error


def _write_pins(project: Project, line: Line, target: Line) -> None:
    """Append the new line's tables after the upstream's last table in pins.toml, as a
    textual copy of ``line``'s (comments included) with the release's own tag, commit and
    artifacts; every other byte of the file stays as it was."""
    path = project.root / PINS
    lines = path.read_text().splitlines(keepends=True)
    start, end = _tables_span(lines, f'{line.upstream}.lines."{line.version}"')
    _, insert = _tables_span(lines, line.upstream)
    block = _copied_tables(lines[start:end], line, target)
    before = "".join(lines[:insert]).rstrip("\n") + "\n\n"
    rest = "".join(lines[insert:])
    write_atomic(path, before + block + ("\n" + rest if rest else ""))


_HEADER = re.compile(r"^\[(?P<key>[^\]]+)\]\s*(?:#.*)?$")


def _tables_span(lines: list[str], key: str) -> tuple[int, int]:
    """Line indexes [start, end) of the table ``key`` and its subtables. The comment lines
    right before the next table belong to that table, not to this span."""
    start = end = -1
    for index, raw in enumerate(lines):
        match = _HEADER.match(raw)
        if not match:
            continue
        name = match.group("key")
        if name == key or name.startswith(f"{key}."):
            start = index if start < 0 else start
        elif start >= 0:
            end = index
            break
    if start < 0:
        raise PatchError(f"{PINS} has no [{key}] table")
    if end < 0:
        end = len(lines)
    while end > start and (lines[end - 1].startswith("#") or not lines[end - 1].strip()):
        end -= 1
    return start, end


def _copied_tables(block: list[str], line: Line, target: Line) -> str:
    """``line``'s tables with the keys and pins of ``target``; comments kept."""
    old_key = f'{line.upstream}.lines."{line.version}"'
    new_key = f'{target.upstream}.lines."{target.version}"'
    artifacts = {"sdist": target.sdist, "wheel": target.wheel}
    table = ""
    out = []
    for raw in block:
        match = _HEADER.match(raw)
        if match:
            table = match.group("key").removeprefix(old_key).lstrip(".")
            out.append(raw.replace(old_key, new_key, 1))
            if table == "env":
                out.append(f"# Copied from {line.id} by `fp4stack rebase`, with its comments: "
                           f"check them for {target.version}.\n")  # fmt: skip
            continue
        key = raw.split("=", 1)[0].strip() if "=" in raw and not raw.startswith("#") else ""
        artifact = artifacts.get(table)
        if table == "" and key == "tag":
            raw = f"tag = {_s(target.tag)}\n"
        elif table == "" and key == "commit":
            note = "" if target.commit else f"  # {UNKNOWN_COMMIT}"
            raw = f"commit = {_s(target.commit)}{note}\n"
        elif artifact is not None and key in ("filename", "sha256"):
            raw = f"{key} = {_s(getattr(artifact, key))}\n"
        out.append(raw)
    return "".join(out).rstrip("\n") + "\n"


def _s(value: str) -> str:
    return json.dumps(value)  # a TOML basic string for the plain text pins hold


def _write_series(project: Project, line: Line, target: Line, kept: list[str]) -> None:
    """The old series file without the dropped patches: comments stay where they were
    (the version in them updated), entries keep their order."""
    old, new = project.patches(line), project.root / target.patch_dir
    new.mkdir(parents=True)
    out = []
    for raw in (old / SERIES).read_text().splitlines():
        entry = raw.split("#", 1)[0].strip()
        if entry and entry.split()[0] not in kept:
            continue
        out.append(raw.replace(line.version, target.version) if not entry else raw)
    (new / SERIES).write_text("".join(f"{ln}\n" for ln in out))
    if read_series(new) != kept:
        write_series(new, kept)
    for name in kept:
        shutil.copy2(old / name, new / name)


def _write_changelog(
    project: Project, line: Line, target: Line, report: DriftReport, dropped: set[str]
) -> None:
    entries = [_dropped_entry(project, line, target, p) for p in report.patches
               if p.patch in dropped]  # fmt: skip
    text = (
        f"# {target.upstream} {target.version} line: changes to the series\n\n"
        f"Created from {line.id} by `fp4stack rebase`. Patches dropped because upstream "
        "shipped them, with the release that shipped it; patches added or changed are in "
        "git log.\n\n## Dropped\n\n" + ("\n".join(entries) if entries else "(none)") + "\n"
    )
    write_atomic(project.root / target.patch_dir / CHANGELOG, text)


def _dropped_entry(project: Project, line: Line, target: Line, p: PatchDrift) -> str:
    """Where the patch shipped: the release its Upstream-Status names, when that is no newer
    than the target (``Backport [0.45.0]``); else the target, where drift found it."""
    if p.decided_by == "tests" and p.tested == "pass":
        why = f"its tests pass on pristine {target.version}"
    elif p.decided_by == "tests":
        why = f"its tests pass on {target.version} with the other patches applied"
    else:
        why = f"it reverse-applies to {target.version}"
    status = parse_patch(project.patches(line) / p.patch).trailer("Upstream-Status")
    named = re.match(r"Backport \[v?([0-9][^\]\s]*)\]", status[0]) if status else None
    if named and _no_newer(named.group(1), target.version):
        shipped = f"{named.group(1)} (its Upstream-Status; drift found it in {target.version})"
    else:
        shipped = f"{target.version} or earlier (drift found it there)"
    return f"- `{p.patch}` ({p.subject}): shipped in {line.distribution} {shipped}: {why}"


def _no_newer(version: str, target: str) -> bool:
    try:
        return Version(version) <= Version(target)
    except InvalidVersion:
        return False


def _copy_ci_lists(project: Project, line: Line, target: Line) -> None:
    for kind in ("select", "deselect"):
        old = project.ci_list(kind, line)
        if old.exists():
            new = project.ci_list(kind, target)
            text = f"# Copied from {line.id} by `fp4stack rebase`: re-derive it for {target.id}.\n"
            write_atomic(new, text + old.read_text())
