"""Apply a series onto the pristine tree with ``git am``: ``build/src/<id>`` on branch
``patched``, one commit per patch, over the pristine ``upstream`` branch."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from fp4stack.core import git
from fp4stack.core.errors import CommandError, PatchError, stage
from fp4stack.core.fs import write_atomic
from fp4stack.core.log import log
from fp4stack.stack import sources
from fp4stack.stack.pins import Line, Project
from fp4stack.stack.series import series_paths, stack_digest

STATE_FILE = "fp4stack-state.json"
PENDING = "pending"  # the inputs of a state written before a `git am` that may stop
FORMAT_PATCH = [
    "format-patch", "--stdout", "--zero-commit", "--full-index", "--no-signature",
    "--no-stat", "--keep-subject", "--no-numbered", "--no-renames",
]  # fmt: skip


@dataclass(frozen=True)
class State:
    """What the last apply or refresh left in ``build/src/<id>``."""

    inputs: str
    head: str
    source: str


def apply(project: Project, line: Line, force: bool = False) -> bool:
    """Make ``build/src/<id>`` the pristine tree plus the series; False if already so."""
    with stage(PatchError, f"{line.id}: cannot apply {line.patch_dir}/"):
        return _apply(project, line, force)


def _apply(project: Project, line: Line, force: bool) -> bool:
    repo = project.src(line)
    patches = series_paths(project.patches(line))
    source = sources.source_identity(project, line)
    inputs = inputs_digest(project, line, source)
    state = read_state(repo)
    if state and not force:
        _refuse_to_lose_work(repo, line, state)
        if state.inputs == inputs:
            log(f"{line.id}: up to date ({len(patches)} patches)")
            return False
    if state is None or state.source != source or not _has_upstream(repo):
        sources.import_pristine(project, line, repo)
    else:
        _abort_am(repo)
    git.git(repo, "checkout", "-q", "-f", "-B", sources.PATCHED_BRANCH, sources.UPSTREAM_BRANCH)
    git.git(repo, "clean", "-q", "-f", "-d", "-x")
    # A state before `git am`, so that after a stopped patch `git am --continue` and then
    # `make refresh` (or `git am --abort` and then `make apply`) find the tree.
    write_state(repo, State(PENDING, "", source))
    _am(repo, line, patches)
    write_state(repo, State(inputs, git.rev_parse(repo, "HEAD"), source))
    log(f"{line.id}: applied {len(patches)} patches onto {line.version}")
    return True


def inputs_digest(project: Project, line: Line, source: str) -> str:
    digest = stack_digest(project.patches(line))
    return hashlib.sha256(f"{source}\0{digest}".encode()).hexdigest()


def _refuse_to_lose_work(repo: Path, line: Line, state: State) -> None:
    if git.am_in_progress(repo):
        raise PatchError(
            f"{repo}: a `git am` is stopped on a patch",
            hint=f"fix it and run `git -C {repo} am --continue`, then `make refresh`; "
            "or `fp4stack apply --force` to start over from pristine",
        )
    head = git.rev_parse(repo, "HEAD")
    pristine = git.git(repo, "rev-parse", "--verify", "-q", f"{sources.UPSTREAM_BRANCH}^{{commit}}",
                       check=False).stdout.strip()  # fmt: skip
    if head == pristine and git.is_clean(repo):
        return  # pristine and clean (as `git am --abort` leaves it): nothing to lose
    if head != state.head or not git.is_clean(repo):
        raise PatchError(
            f"{repo} has commits or changes not exported to {line.patch_dir}/",
            hint="`make refresh` keeps them; `fp4stack apply --force` discards them",
        )


def _am(repo: Path, line: Line, patches: list[Path]) -> None:
    if not patches:
        return
    try:
        git.git(repo, "am", "--keep-cr", "--quiet", *map(str, patches))
    except CommandError as error:
        text = error.output
        failed = re.search(r"Patch failed at (\d+)", text)
        index = int(failed.group(1)) - 1 if failed else 0
        files = sorted(set(re.findall(r"error: (?:patch failed: )?([^:\s]+)[:]", text)))
        raise PatchError(
            f"{line.patch_dir}/{patches[index].name} does not apply"
            + (f" (files: {', '.join(files)})" if files else ""),
            hint=f"fix it in {repo}, `git add` the result and run `git -C {repo} am --continue`, "
            "then `make refresh`",
        ) from error


def _abort_am(repo: Path) -> None:
    if git.am_in_progress(repo):
        git.git(repo, "am", "--abort", check=False)


def _has_upstream(repo: Path) -> bool:
    return (repo / ".git").exists() and bool(
        git.git(repo, "rev-parse", "--verify", "-q", sources.UPSTREAM_BRANCH, check=False).stdout
    )


def read_state(repo: Path) -> State | None:
    path = repo / ".git" / STATE_FILE
    try:
        return State(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def write_state(repo: Path, state: State) -> None:
    write_atomic(repo / ".git" / STATE_FILE, json.dumps(state.__dict__, indent=1) + "\n")
