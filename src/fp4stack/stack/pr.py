"""Cut upstream pull requests from a stack: one branch and one description per patch.

Nothing is pushed (no machine here reaches GitHub): each PR is a branch ``pr/<slug>`` in
``build/src/<id>`` holding that patch alone on the pinned tag, plus ``build/pr/<id>/<slug>/``
with the PR text and the standalone patch, ready to push from a machine that can.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fp4stack.core import git
from fp4stack.core.errors import CommandError, PatchError
from fp4stack.stack import sources
from fp4stack.stack.apply import FORMAT_PATCH
from fp4stack.stack.pins import Line, Project
from fp4stack.stack.series import PatchInfo, parse_patch, series_paths

UPSTREAMABLE = ("Pending", "Submitted")
# Packaging metadata that upstream generates at build time: it has no source file in git.
GENERATED_METADATA = (".dist-info", ".egg-info")


@dataclass(frozen=True)
class PullRequest:
    """A prepared PR: its branch and the folder with its text."""

    patch: str
    branch: str
    folder: Path


def candidates(project: Project, line: Line, names: list[str]) -> list[PatchInfo]:
    """The named patches, or every patch still to be sent upstream (Pending or Submitted)."""
    patches = [parse_patch(p) for p in series_paths(project.patches(line))]
    if names:
        known = {p.path.name: p for p in patches}
        missing = [n for n in names if n not in known]
        if missing:
            raise PatchError(f"not in {line.patch_dir}/series: {', '.join(missing)}")
        return [known[n] for n in names]
    return [p for p in patches
            if p.trailer("Upstream-Status")[:1] and
            p.trailer("Upstream-Status")[0].startswith(UPSTREAMABLE)]  # fmt: skip


def cut(project: Project, line: Line, patch: PatchInfo) -> PullRequest:
    """Apply ``patch`` alone onto the pristine tag as ``pr/<slug>`` and write its PR text.

    :raises PatchError: if it changes generated packaging metadata, or needs earlier
        patches (they are named).
    """
    if generated := [f for f in patch.files if f.split("/")[0].endswith(GENERATED_METADATA)]:
        raise PatchError(
            f"{line.patch_dir}/{patch.path.name} changes generated packaging metadata "
            f"({', '.join(generated)}), which has no source in {line.git}; make the same "
            "change in upstream's packaging (setup.py or pyproject.toml) by hand"
        )
    repo = project.src(line)
    slug = patch.path.name.removesuffix(".patch")
    branch = f"pr/{slug}"
    git.git(repo, "branch", "-f", branch, sources.UPSTREAM_BRANCH)
    worktree = project.build / "pr-worktree" / line.id
    git.git(repo, "worktree", "prune")
    git.git(repo, "worktree", "add", "-f", "--detach", str(worktree), branch)
    try:
        git.git(worktree, "checkout", "-q", branch)
        git.git(worktree, "am", "--keep-cr", "--3way", "--quiet", str(patch.path))
    except CommandError as error:
        git.git(worktree, "am", "--abort", check=False)
        earlier = _earlier_on_same_files(project, line, patch)
        raise PatchError(
            f"{line.patch_dir}/{patch.path.name} does not apply alone to {line.tag}; "
            f"send it after: {', '.join(earlier) or 'an earlier patch'}"
        ) from error
    finally:
        git.git(repo, "worktree", "remove", "--force", str(worktree), check=False)
    folder = project.build / "pr" / line.id / slug
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "PR.md").write_text(describe(line, patch, branch))
    commit = git.rev_parse(repo, branch)
    (folder / f"{slug}.patch").write_text(git.git(repo, *FORMAT_PATCH, "-1", commit).stdout)
    return PullRequest(patch.path.name, branch, folder)


def _earlier_on_same_files(project: Project, line: Line, patch: PatchInfo) -> list[str]:
    names = []
    for path in series_paths(project.patches(line)):
        if path == patch.path:
            break
        if set(parse_patch(path).files) & set(patch.files):
            names.append(path.name)
    return names


def describe(line: Line, patch: PatchInfo, branch: str) -> str:
    """The PR title and body, from the patch header."""
    bugs = "\n".join(f"{'Fixes' if '/issues/' in b else 'Refs'} {b}" for b in patch.trailer("Bug"))
    tests = "\n".join(f"- `{t}`" for t in patch.trailer("Test"))
    return (
        f"# {patch.subject}\n\n{patch.description}\n\n{bugs}\n\n"
        f"## Testing\n\nRegression test(s) in fp4stack, red on {line.distribution} "
        f"{line.version} and green with this change (`make prove`):\n{tests}\n\n"
        f"## Sending it\n\nBranch `{branch}` in build/src/{line.id} is this patch alone on "
        f"{line.tag} ({line.commit[:12]}). Rebase it onto {line.git} main, push it "
        f"to your fork, and open the PR with the text above.\n"
    )
