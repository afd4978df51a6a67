"""Project-agnostic git verbs, each a thin wrapper over ``git -C repo`` with pinned config.

The pinned config and identity make commits and exported patches byte-stable: the same
inputs always give the same commit hashes and the same patch files.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from fp4stack.core.runner import Result, run

IDENTITY = {
    "GIT_AUTHOR_NAME": "fp4stack",
    "GIT_AUTHOR_EMAIL": "fp4stack@users.noreply.localhost",
    "GIT_COMMITTER_NAME": "fp4stack",
    "GIT_COMMITTER_EMAIL": "fp4stack@users.noreply.localhost",
    # A fixed committer date: re-applying the same series gives the same commit hashes.
    "GIT_COMMITTER_DATE": "2000-01-01T00:00:00Z",
    "GIT_CONFIG_NOSYSTEM": "1",
    # Messages in English whatever the user's locale: apply reads git's "Patch failed at".
    "LC_ALL": "C",
}
_CONFIG = [
    "-c", "core.autocrlf=false",
    "-c", "core.abbrev=40",
    "-c", "diff.renames=true",
    "-c", "diff.noprefix=false",
    "-c", "format.signature=",
    "-c", "commit.gpgsign=false",
    "-c", "init.defaultBranch=patched",
    "-c", "advice.detachedHead=false",
    "-c", "checkout.workers=0",
]  # fmt: skip


def git(
    repo: Path,
    *args: str,
    check: bool = True,
    input_text: str | None = None,
    binary: bool = False,
    env: Mapping[str, str] | None = None,
) -> Result:
    """Run one git command in ``repo`` with the pinned config and identity.

    :param env: variables layered over the pinned identity (e.g. commit dates).
    """
    return run(
        ["git", "-C", str(repo), *_CONFIG, *args],
        env={**IDENTITY, **(env or {})},
        check=check,
        input_text=input_text,
        binary=binary,
    )


def query(repo: Path, *args: str) -> str:
    """Run a git query and return its stripped stdout."""
    return git(repo, *args).stdout.strip()


def init(repo: Path) -> None:
    """Create an empty repository at ``repo``."""
    repo.mkdir(parents=True, exist_ok=True)
    git(repo, "init", "-q")


def commit_all(repo: Path, message: str, date: str) -> str:
    """Commit the whole work tree as one commit dated ``date``; return its hash."""
    git(repo, "add", "-A", "-f")
    git(repo, "commit", "-q", "--allow-empty", "-m", message,
        env={"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date})  # fmt: skip
    return rev_parse(repo, "HEAD")


def rev_parse(repo: Path, rev: str) -> str:
    """Resolve ``rev`` to a full hash."""
    return query(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")


def is_clean(repo: Path) -> bool:
    """True when the work tree and index match HEAD (untracked files count as dirty)."""
    return query(repo, "status", "--porcelain") == ""


def am_in_progress(repo: Path) -> bool:
    """True while a ``git am`` stopped on a patch waits for ``--continue`` or ``--abort``."""
    return (Path(query(repo, "rev-parse", "--absolute-git-dir")) / "rebase-apply").exists()


def changed_files(repo: Path, base: str, head: str) -> list[str]:
    """Paths that differ between two commits."""
    listing = query(repo, "diff", "--name-only", "--no-renames", base, head)
    return [line for line in listing.splitlines() if line]


def show_file(repo: Path, rev: str, path: str) -> bytes | None:
    """The bytes of ``path`` at ``rev``, or None when it does not exist there."""
    result = git(repo, "show", f"{rev}:{path}", check=False, binary=True)
    return result.data if result.ok else None
