"""How a line's patches meet another release's pristine tree, by their text.

In a scratch repository holding the target release's pristine tree (plus the line's own
pristine objects, so ``git am -3`` has the bases), each patch of the series, in order:

- reverse-applies: the release already holds the change (``git apply --check -R``);
- applies: ``git apply --check``, then committed so later patches see it;
- applies-3way: only with ``git am -3``;
- conflicts: neither; the files and hunks ``git apply --reject`` leaves are named.

This is the text half of ``drift``; the tests decide (see ``testing.drift_behaviour``),
and ``tree_without`` gives them the target's tree with every patch but one applied. The
report and its verdict rule are ``drift_report``.
"""

from __future__ import annotations

import re
from pathlib import Path

from fp4stack.core import git
from fp4stack.core.errors import PatchError, stage
from fp4stack.stack import sources
from fp4stack.stack.apply import apply
from fp4stack.stack.drift_report import PatchDrift
from fp4stack.stack.pins import Line, Project
from fp4stack.stack.series import parse_patch, series_paths

BASE_REF = "refs/fp4stack/line-base"


def text_drift(project: Project, line: Line, target: Line) -> list[PatchDrift]:
    """Classify each patch of ``line``'s series against ``target``'s pristine tree."""
    with stage(PatchError, f"{line.id}: cannot compare the series with {target.id}"):
        apply(project, line)
        scratch = scratch_repo(project, target)
        sources.import_pristine(project, target, scratch)
        fetch_base(scratch, project.src(line))
        git.git(scratch, "checkout", "-q", "-f", "-B", "drift", sources.UPSTREAM_BRANCH)
        return [_classify(scratch, path) for path in series_paths(project.patches(line))]


def scratch_repo(project: Project, target: Line) -> Path:
    """The scratch repository ``text_drift`` made for ``target``."""
    return project.build / "drift" / "src" / target.id


def tree_without(repo: Path, patches: list[Path], left_out: str) -> tuple[str, list[str]]:
    """A branch of ``repo``'s pristine tree with every patch but ``left_out`` applied (those
    that apply, in series order, with ``git am -3``); its ref and the patches it holds."""
    branch = f"drift-without/{left_out.removesuffix('.patch')}"
    git.git(repo, "checkout", "-q", "-f", "-B", branch, sources.UPSTREAM_BRANCH)
    held = []
    for path in patches:
        if path.name == left_out:
            continue
        if git.git(repo, "am", "--keep-cr", "-q", "-3", str(path), check=False).ok:
            held.append(path.name)
        else:
            git.git(repo, "am", "--abort", check=False)
    return f"refs/heads/{branch}", held


def fetch_base(repo: Path, line_repo: Path) -> None:
    """Bring the line's pristine commit into ``repo``, so 3-way merges find the bases."""
    git.git(repo, "fetch", "-q", "--no-tags", str(line_repo),
            f"+{sources.UPSTREAM_BRANCH}:{BASE_REF}")  # fmt: skip


def _classify(repo: Path, path: Path) -> PatchDrift:
    subject = parse_patch(path).subject
    if git.git(repo, "apply", "--check", "-R", str(path), check=False).ok:
        return PatchDrift(path.name, subject, "reverse-applies")
    if git.git(repo, "apply", "--check", str(path), check=False).ok:
        git.git(repo, "am", "--keep-cr", "-q", str(path))
        return PatchDrift(path.name, subject, "applies")
    if git.git(repo, "am", "--keep-cr", "-q", "-3", str(path), check=False).ok:
        return PatchDrift(path.name, subject, "applies-3way")
    git.git(repo, "am", "--abort", check=False)
    return PatchDrift(path.name, subject, "conflicts", rejected_hunks(repo, path))


def rejected_hunks(repo: Path, path: Path) -> dict[str, list[str]]:
    """File -> the hunk headers of ``path`` that do not apply to ``repo``'s work tree
    (a missing file is named with ``file missing``); the work tree is reset afterwards."""
    result = git.git(repo, "apply", "--reject", str(path), check=False)
    hunks: dict[str, list[str]] = {}
    for missing in re.findall(r"error: (\S+): (?:No such file|does not exist)", result.stdout):
        hunks[missing] = ["file missing"]
    for rej in sorted(repo.rglob("*.rej")):
        name = str(rej.relative_to(repo).with_suffix(""))
        hunks[name] = re.findall(r"^(@@ [^@]* @@)", rej.read_text(errors="replace"), re.M)
    git.git(repo, "reset", "-q", "--hard")
    git.git(repo, "clean", "-q", "-f", "-d", "-x")
    return hunks
