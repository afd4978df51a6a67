"""The maintainer loop: apply, edit, refresh, re-apply — idempotent and byte-stable."""

from __future__ import annotations

import shutil

import pytest

from fp4stack.core import git
from fp4stack.core.errors import PatchError
from fp4stack.stack.apply import apply
from fp4stack.stack.refresh import refresh, stale
from fp4stack.stack.series import read_series

from ..toy_upstream import commit_edit, toy_line

TRIPLE = "def scale(x):\n    return x * 3\n"


def _stack_with_one_patch(toy):
    upstream = toy_line(toy)
    apply(toy, upstream)
    commit_edit(toy.src(upstream), "src/toy/core.py", TRIPLE)
    assert refresh(toy, upstream)
    return upstream


def test_apply_twice_is_a_no_op(toy):
    upstream = toy_line(toy)
    assert apply(toy, upstream) is True
    head = git.rev_parse(toy.src(upstream), "HEAD")
    assert apply(toy, upstream) is False
    assert git.rev_parse(toy.src(upstream), "HEAD") == head


def test_refresh_exports_one_named_patch_per_commit(toy):
    upstream = _stack_with_one_patch(toy)
    assert read_series(toy.patches(upstream)) == ["triple-instead-of-double.patch"]
    text = (toy.patches(upstream) / "triple-instead-of-double.patch").read_text()
    assert text.startswith("From 0000000000000000000000000000000000000000 ")
    assert "Upstream-Status: Pending" in text and "-    return x * 2" in text


def test_refresh_without_edits_changes_nothing(toy):
    upstream = _stack_with_one_patch(toy)
    before = {p.name: p.read_bytes() for p in toy.patches(upstream).iterdir()}
    assert refresh(toy, upstream) == []
    assert stale(toy, upstream) == []
    assert {p.name: p.read_bytes() for p in toy.patches(upstream).iterdir()} == before


def test_reapply_from_scratch_reproduces_commits_and_patches(toy):
    upstream = _stack_with_one_patch(toy)
    patch = (toy.patches(upstream) / "triple-instead-of-double.patch").read_bytes()
    apply(toy, upstream, force=True)
    head = git.rev_parse(toy.src(upstream), "HEAD")
    apply(toy, upstream, force=True)
    assert git.rev_parse(toy.src(upstream), "HEAD") == head
    assert refresh(toy, upstream) == []
    assert (toy.patches(upstream) / "triple-instead-of-double.patch").read_bytes() == patch


def test_changed_series_rebuilds_from_pristine(toy):
    upstream = _stack_with_one_patch(toy)
    (toy.patches(upstream) / "series").write_text("# toy stack\n")
    assert apply(toy, upstream) is True
    assert (toy.src(upstream) / "src/toy/core.py").read_text().endswith("x * 2\n")


def test_apply_refuses_to_discard_unexported_commits(toy):
    upstream = toy_line(toy)
    apply(toy, upstream)
    commit_edit(toy.src(upstream), "src/toy/core.py", TRIPLE)
    with pytest.raises(PatchError, match="not exported"):
        apply(toy, upstream)
    apply(toy, upstream, force=True)
    assert (toy.src(upstream) / "src/toy/core.py").read_text().endswith("x * 2\n")


def test_a_patch_that_does_not_apply_names_itself_and_its_file(toy):
    upstream = _stack_with_one_patch(toy)
    patch = toy.patches(upstream) / "triple-instead-of-double.patch"
    patch.write_text(patch.read_text().replace("-    return x * 2", "-    return x * 5"))
    with pytest.raises(PatchError) as caught:
        apply(toy, upstream)
    assert "triple-instead-of-double.patch does not apply" in str(caught.value)
    assert "src/toy/core.py" in str(caught.value)
    assert git.am_in_progress(toy.src(upstream)), "git am --continue must be able to resume"
    with pytest.raises(PatchError, match="git am"):
        apply(toy, upstream)


def _stopped_on_a_broken_patch(toy, fresh=False):
    upstream = _stack_with_one_patch(toy)
    patch = toy.patches(upstream) / "triple-instead-of-double.patch"
    good = patch.read_text()
    patch.write_text(good.replace("-    return x * 2", "-    return x * 5"))
    if fresh:  # a first apply (a new clone, or after `make clean`)
        shutil.rmtree(toy.src(upstream))
    with pytest.raises(PatchError):
        apply(toy, upstream)
    return upstream, patch, good


def test_apply_after_git_am_abort_starts_again_without_force(toy):
    upstream, patch, good = _stopped_on_a_broken_patch(toy)
    git.git(toy.src(upstream), "am", "--abort")
    patch.write_text(good)
    assert apply(toy, upstream) is True, "an aborted am left nothing to lose: no --force"
    assert (toy.src(upstream) / "src/toy/core.py").read_text() == TRIPLE
    assert apply(toy, upstream) is False


def test_refresh_after_git_am_continue_exports_the_resolution(toy):
    upstream, patch, _ = _stopped_on_a_broken_patch(toy, fresh=True)
    repo = toy.src(upstream)
    (repo / "src/toy/core.py").write_text(TRIPLE)
    git.git(repo, "add", "src/toy/core.py")
    git.git(repo, "am", "--continue")
    assert refresh(toy, upstream) == ["triple-instead-of-double.patch"]
    assert "-    return x * 2" in patch.read_text()
    assert apply(toy, upstream) is False
