"""Export the commits of ``build/src/<id>`` back to the line's ``patches/<upstream>/<version>/``
(the series and one ``git format-patch`` file per commit), and tell which patch files a
re-export would change."""

from __future__ import annotations

from pathlib import Path

from fp4stack.core import git
from fp4stack.core.errors import PatchError, stage
from fp4stack.core.fs import write_atomic
from fp4stack.stack import sources
from fp4stack.stack.apply import FORMAT_PATCH, State, inputs_digest, read_state, write_state
from fp4stack.stack.pins import Line, Project
from fp4stack.stack.series import read_series, slug, write_series


def export(project: Project, line: Line) -> dict[str, str]:
    """Each commit on top of ``upstream`` as a patch file: file name -> contents."""
    repo = _require_tree(project, line)
    commits = git.query(repo, "rev-list", "--reverse", f"{sources.UPSTREAM_BRANCH}..HEAD")
    exported: dict[str, str] = {}
    for commit in commits.split():
        subject = git.query(repo, "log", "-1", "--format=%s", commit)
        name = f"{slug(subject)}.patch"
        if name in exported:
            raise PatchError(f"two commits in {repo} share the subject {subject!r}")
        exported[name] = git.git(repo, *FORMAT_PATCH, "-1", commit).stdout
    return exported


def stale(project: Project, line: Line) -> list[str]:
    """Patch files (or the series) that a refresh would change; empty when in sync."""
    return stale_names(project.patches(line), export(project, line))


def stale_names(patch_dir: Path, exported: dict[str, str]) -> list[str]:
    changed = [n for n, text in exported.items() if _read(patch_dir / n) != text]
    changed += [n for n in _patch_files(patch_dir) if n not in exported]
    if read_series(patch_dir) != list(exported):
        changed.append("series")
    return sorted(set(changed))


def refresh(project: Project, line: Line) -> list[str]:
    """Rewrite the line's patch dir from the commits in ``build/src/<id>``; return what changed."""
    with stage(PatchError, f"{line.id}: cannot export build/src/{line.id}/"):
        return _refresh(project, line)


def _refresh(project: Project, line: Line) -> list[str]:
    patch_dir = project.patches(line)
    exported = export(project, line)
    changed = stale_names(patch_dir, exported)
    if changed:
        patch_dir.mkdir(parents=True, exist_ok=True)
        for name, text in exported.items():
            if _read(patch_dir / name) != text:
                write_atomic(patch_dir / name, text)
        for name in _patch_files(patch_dir):
            if name not in exported:
                (patch_dir / name).unlink()
        write_series(patch_dir, list(exported))
    # Also when no file changed: a finished `git am --continue` (or rebase) leaves a state
    # that does not yet name this HEAD, and `apply` would take the tree for unexported work.
    repo = project.src(line)
    source = sources.source_identity(project, line)
    state = State(inputs_digest(project, line, source), git.rev_parse(repo, "HEAD"), source)
    if read_state(repo) != state:
        write_state(repo, state)
    return changed


def _require_tree(project: Project, line: Line) -> Path:
    repo = project.src(line)
    if read_state(repo) is None:
        raise PatchError(f"{repo} does not exist", hint="run `make apply` first")
    if git.am_in_progress(repo):
        raise PatchError(f"{repo}: finish or abort the stopped `git am` first")
    if not git.is_clean(repo):
        raise PatchError(
            f"{repo} has uncommitted changes", hint="commit them (one commit per patch) first"
        )
    return repo


def _patch_files(patch_dir: Path) -> list[str]:
    return sorted(p.name for p in patch_dir.glob("*.patch"))


def _read(path: Path) -> str | None:
    return path.read_text() if path.exists() else None
