"""`fp4stack pr` cuts a branch holding one patch alone on the pinned tag, with its PR text."""

from __future__ import annotations

import pytest

from fp4stack.core import git
from fp4stack.core.errors import PatchError
from fp4stack.stack import pr
from fp4stack.stack.apply import apply
from fp4stack.stack.refresh import refresh

from .conftest import MESSAGE, commit_edit, toy_line


def test_pending_patch_becomes_a_branch_and_a_description(toy):
    upstream = toy_line(toy)
    apply(toy, upstream)
    commit_edit(toy.src(upstream), "src/toy/core.py", "def scale(x):\n    return x * 3\n")
    refresh(toy, upstream)
    [patch] = pr.candidates(toy, upstream, [])
    cut = pr.cut(toy, upstream, patch)
    repo = toy.src(upstream)
    assert git.query(repo, "rev-list", "--count", f"upstream..{cut.branch}") == "1"
    assert git.show_file(repo, cut.branch, "src/toy/core.py").endswith(b"x * 3\n")
    text = (cut.folder / "PR.md").read_text()
    assert text.startswith("# Triple instead of double")
    assert "Fixes https://example.invalid/toy/issues/1" in text
    assert "tests/toy/test_scale.py::test_triples" in text
    assert apply(toy, upstream) is False, "cutting a PR must not disturb the applied tree"


def test_a_patch_that_needs_an_earlier_one_names_it(toy):
    upstream = toy_line(toy)
    apply(toy, upstream)
    repo = toy.src(upstream)
    commit_edit(
        repo,
        "src/toy/core.py",
        "def scale(x):\n    return x * 3\n",
        MESSAGE.replace("Pending [toy upstream has no tracker]", "Backport [1.1]"),
    )
    commit_edit(
        repo,
        "src/toy/core.py",
        "def scale(x):\n    return x * 4\n",
        MESSAGE.replace("Triple instead of double", "Quadruple instead of triple"),
    )
    refresh(toy, upstream)
    [patch] = pr.candidates(toy, upstream, [])
    with pytest.raises(PatchError, match=r"send it after: triple-instead-of-double\.patch"):
        pr.cut(toy, upstream, patch)


def test_a_patch_to_generated_wheel_metadata_is_not_cut(toy):
    upstream = toy_line(toy)
    apply(toy, upstream)
    repo = toy.src(upstream)
    (repo / "toy-1.0.dist-info").mkdir()
    commit_edit(repo, "toy-1.0.dist-info/METADATA", "Requires-Dist: requests\n")
    refresh(toy, upstream)
    [patch] = pr.candidates(toy, upstream, [])
    with pytest.raises(PatchError, match=r"toy-1\.0\.dist-info/METADATA.*setup\.py"):
        pr.cut(toy, upstream, patch)
    assert git.query(repo, "branch", "--list", "pr/*") == "", "no branch for a PR that cannot exist"
