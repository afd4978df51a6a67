"""Apply a series onto the pristine tree with ``git am``, and export commits back to it."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from fp4stack import git, sources
from fp4stack.errors import CommandError, PatchError
from fp4stack.log import log
from fp4stack.project import Project, Upstream
from fp4stack.series import read_series, series_paths, slug, stack_digest, write_series

STATE_FILE = "fp4stack-state.json"
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


def apply(project: Project, upstream: Upstream, force: bool = False) -> bool:
    """Make ``build/src/<id>`` the pristine tree plus the series; False if already so."""
    repo = project.src(upstream)
    patches = series_paths(project.patches(upstream))
    source = sources.source_identity(project, upstream)
    inputs = _inputs(project, upstream, source)
    state = _read_state(repo)
    if state and not force:
        _refuse_to_lose_work(repo, upstream, state)
        if state.inputs == inputs:
            log(f"{upstream.id}: up to date ({len(patches)} patches)")
            return False
    if state is None or state.source != source or not _has_upstream(repo):
        sources.import_pristine(project, upstream, repo)
    else:
        _abort_am(repo)
    git.git(repo, "checkout", "-q", "-f", "-B", sources.PATCHED_BRANCH, sources.UPSTREAM_BRANCH)
    git.git(repo, "clean", "-q", "-f", "-d", "-x")
    _am(repo, upstream, patches)
    _write_state(repo, State(inputs, git.rev_parse(repo, "HEAD"), source))
    log(f"{upstream.id}: applied {len(patches)} patches onto {upstream.version}")
    return True


def export(project: Project, upstream: Upstream) -> dict[str, str]:
    """Each commit on top of ``upstream`` as a patch file: file name -> contents."""
    repo = _require_tree(project, upstream)
    commits = git.out(repo, "rev-list", "--reverse", f"{sources.UPSTREAM_BRANCH}..HEAD")
    exported: dict[str, str] = {}
    for commit in commits.split():
        subject = git.out(repo, "log", "-1", "--format=%s", commit)
        name = f"{slug(subject)}.patch"
        if name in exported:
            raise PatchError(f"two commits in {repo} share the subject {subject!r}")
        exported[name] = git.git(repo, *FORMAT_PATCH, "-1", commit).stdout
    return exported


def stale(project: Project, upstream: Upstream) -> list[str]:
    """Patch files (or the series) that a refresh would change; empty when in sync."""
    return _stale(project.patches(upstream), export(project, upstream))


def _stale(patch_dir: Path, exported: dict[str, str]) -> list[str]:
    changed = [n for n, text in exported.items() if _read(patch_dir / n) != text]
    changed += [n for n in _patch_files(patch_dir) if n not in exported]
    if read_series(patch_dir) != list(exported):
        changed.append("series")
    return sorted(set(changed))


def refresh(project: Project, upstream: Upstream) -> list[str]:
    """Rewrite ``patches/<id>/`` from the commits in ``build/src/<id>``; return what changed."""
    patch_dir = project.patches(upstream)
    exported = export(project, upstream)
    changed = _stale(patch_dir, exported)
    if not changed:
        return []
    patch_dir.mkdir(parents=True, exist_ok=True)
    for name, text in exported.items():
        if _read(patch_dir / name) != text:
            _write_atomic(patch_dir / name, text)
    for name in _patch_files(patch_dir):
        if name not in exported:
            (patch_dir / name).unlink()
    write_series(patch_dir, list(exported))
    repo = project.src(upstream)
    source = sources.source_identity(project, upstream)
    _write_state(
        repo, State(_inputs(project, upstream, source), git.rev_parse(repo, "HEAD"), source)
    )
    return changed


def _inputs(project: Project, upstream: Upstream, source: str) -> str:
    digest = stack_digest(project.patches(upstream))
    return hashlib.sha256(f"{source}\0{digest}".encode()).hexdigest()


def _refuse_to_lose_work(repo: Path, upstream: Upstream, state: State) -> None:
    if git.am_in_progress(repo):
        raise PatchError(
            f"{repo}: a `git am` is stopped on a patch",
            hint=f"fix it and run `git -C {repo} am --continue`, then `make refresh`; "
            "or `fp4stack apply --force` to start over from pristine",
        )
    if git.rev_parse(repo, "HEAD") != state.head or not git.is_clean(repo):
        raise PatchError(
            f"{repo} has commits or changes not exported to patches/{upstream.id}/",
            hint="`make refresh` keeps them; `fp4stack apply --force` discards them",
        )


def _am(repo: Path, upstream: Upstream, patches: list[Path]) -> None:
    if not patches:
        return
    try:
        git.git(repo, "am", "--keep-cr", "--quiet", *map(str, patches))
    except CommandError as error:
        text = str(error)
        failed = re.search(r"Patch failed at (\d+)", text)
        index = int(failed.group(1)) - 1 if failed else 0
        files = sorted(set(re.findall(r"error: (?:patch failed: )?([^:\s]+)[:]", text)))
        raise PatchError(
            f"patches/{upstream.id}/{patches[index].name} does not apply"
            + (f" (files: {', '.join(files)})" if files else "")
            + f"\n{text}",
            hint=f"fix it in {repo}, `git add` the result and run `git -C {repo} am --continue`, "
            "then `make refresh`",
        ) from None


def _abort_am(repo: Path) -> None:
    if git.am_in_progress(repo):
        git.git(repo, "am", "--abort", check=False)


def _has_upstream(repo: Path) -> bool:
    return (repo / ".git").exists() and bool(
        git.git(repo, "rev-parse", "--verify", "-q", sources.UPSTREAM_BRANCH, check=False).stdout
    )


def _require_tree(project: Project, upstream: Upstream) -> Path:
    repo = project.src(upstream)
    if _read_state(repo) is None:
        raise PatchError(f"{repo} does not exist", hint="run `make apply` first")
    if git.am_in_progress(repo):
        raise PatchError(f"{repo}: finish or abort the stopped `git am` first")
    if not git.is_clean(repo):
        raise PatchError(
            f"{repo} has uncommitted changes", hint="commit them (one commit per patch) first"
        )
    return repo


def _read_state(repo: Path) -> State | None:
    path = repo / ".git" / STATE_FILE
    try:
        return State(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def _write_state(repo: Path, state: State) -> None:
    _write_atomic(repo / ".git" / STATE_FILE, json.dumps(state.__dict__, indent=1) + "\n")


def _patch_files(patch_dir: Path) -> list[str]:
    return sorted(p.name for p in patch_dir.glob("*.patch"))


def _read(path: Path) -> str | None:
    return path.read_text() if path.exists() else None


def _write_atomic(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    temporary.replace(path)
