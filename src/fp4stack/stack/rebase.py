"""``rebase``: create a new line from an existing one, at a newer release.

It pins the release (tag, commit when the submodule has it, artifacts with the sha256 the
index gives), copies the series, drops the patches ``drift`` found upstream (recording each
in the new line's CHANGELOG.md with the release that shipped it) and applies the rest with
``git am -3`` onto the new pristine tree in ``build/src/<upstream>@<version>``. On success
the patches are re-exported against the new tree (``refresh``). A conflict stops ``git am``
where ``git am --continue`` and then ``make refresh UPSTREAM=<upstream>@<version>`` finish.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass

from fp4stack.core import git
from fp4stack.core.errors import CommandError, PatchError, UsageError, stage
from fp4stack.core.fs import write_atomic
from fp4stack.core.log import log
from fp4stack.stack import sources
from fp4stack.stack.apply import State, write_state
from fp4stack.stack.drift import DriftReport, fetch_base
from fp4stack.stack.pins import PINS, Line, Project, load_project
from fp4stack.stack.refresh import refresh
from fp4stack.stack.series import SERIES, read_series, write_series

CHANGELOG = "CHANGELOG.md"
PENDING = "rebase-pending"


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
    """Insert the new line's table after the upstream's last one in pins.toml."""
    path = project.root / PINS
    text = path.read_text()
    block = _line_table(line, target)
    lines = text.splitlines(keepends=True)
    header = re.compile(r"^\[([^\].\"]+)")
    insert = len(lines)
    seen = False
    for index, raw in enumerate(lines):
        match = header.match(raw)
        if match and match.group(1) == line.upstream:
            seen = True
        elif match and seen:
            insert = index
            while insert > 0 and lines[insert - 1].startswith("#"):
                insert -= 1  # keep the next table's leading comment with it
            break
    body = "".join(lines[:insert]).rstrip("\n") + "\n\n" + block
    rest = "".join(lines[insert:])
    write_atomic(path, body + ("\n" + rest if rest else ""))


def _line_table(line: Line, target: Line) -> str:
    key = f'{target.upstream}.lines."{target.version}"'
    out = [f"[{key}]", f"tag = {_s(target.tag)}"]
    note = "" if target.commit else "  # unknown here: fill in from `git ls-remote <git> <tag>`"
    out.append(f"commit = {_s(target.commit)}{note}")
    for kind, artifact in (("sdist", target.sdist), ("wheel", target.wheel)):
        if artifact:
            out += ["", f"[{key}.{kind}]", f"filename = {_s(artifact.filename)}",
                    f"sha256 = {_s(artifact.sha256)}"]  # fmt: skip
    out += ["", f"[{key}.env]", f"# Copied from {line.id} by `fp4stack rebase`: check them.",
            f"torch = {_s(line.env.torch)}", f"requires = {_list(line.env.requires)}",
            f"remove = {_list(line.env.remove)}"]  # fmt: skip
    tests = [f"paths = {_list(line.tests.paths)}"] if line.tests.paths else []
    tests += ["from_submodule = true"] if line.tests.from_submodule else []
    tests += [f"args = {_list(line.tests.args)}"] if line.tests.args else []
    if tests:
        out += ["", f"[{key}.tests]", *tests]
    return "\n".join(out) + "\n"


def _s(value: str) -> str:
    return json.dumps(value)  # a TOML basic string for the plain text pins hold


def _list(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(_s(v) for v in values) + "]"


def _write_series(project: Project, line: Line, target: Line, kept: list[str]) -> None:
    old, new = project.patches(line), project.root / target.patch_dir
    new.mkdir(parents=True)
    header = [ln for ln in (old / SERIES).read_text().splitlines() if ln.startswith("#")]
    header = [ln.replace(line.version, target.version) for ln in header]
    (new / SERIES).write_text("".join(f"{ln}\n" for ln in header))
    write_series(new, kept)
    for name in kept:
        shutil.copy2(old / name, new / name)


def _write_changelog(
    project: Project, line: Line, target: Line, report: DriftReport, dropped: set[str]
) -> None:
    why = {"pass": "its tests pass on the pristine release"}
    entries = [
        f"- `{p.patch}` ({p.subject}): shipped in {line.distribution} {target.version} "
        f"({why.get(p.tested, 'it reverse-applies')})"
        for p in report.patches
        if p.patch in dropped
    ]
    text = (
        f"# {target.upstream} {target.version} line: changes to the series\n\n"
        f"Created from {line.id} by `fp4stack rebase`. Patches dropped because upstream "
        "shipped them, with the release that shipped it; patches added or changed are in "
        "git log.\n\n## Dropped\n\n" + ("\n".join(entries) if entries else "(none)") + "\n"
    )
    write_atomic(project.root / target.patch_dir / CHANGELOG, text)


def _copy_ci_lists(project: Project, line: Line, target: Line) -> None:
    for kind in ("select", "deselect"):
        old = project.ci_list(kind, line)
        if old.exists():
            new = project.ci_list(kind, target)
            text = f"# Copied from {line.id} by `fp4stack rebase`: re-derive it for {target.id}.\n"
            write_atomic(new, text + old.read_text())
