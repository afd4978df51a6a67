"""`fp4stack pr` on a synthetic upstream: a cut, a stacked cut, failed cuts, exit codes.

The toy upstream is a small git tree made here (see toy_upstream.py). Proofs run the ported test
for real, with this interpreter, on the PR tree's package files without and with the fix
(the toy needs no venv of its own).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fp4stack.core import git
from fp4stack.core.errors import PatchError, UsageError
from fp4stack.operations.upstream_prs import cut_prs
from fp4stack.stack import pr, pr_text
from fp4stack.stack.apply import apply
from fp4stack.stack.lint import lint_series
from fp4stack.stack.pins import load_project
from fp4stack.stack.refresh import refresh

from ..toy_upstream import MESSAGE, add_line, commit_edit, toy_line

TEMPLATE = "## Purpose\n\n{why}\n\n{links}\n{series}\n## Test Plan\n\n{test_plan}\n\n" \
    "## Test Result\n\n{test_result}\n"  # fmt: skip
TRIPLE = "def scale(x):\n    return x * 3\n"
QUAD = "def scale(x):\n    return x * 4\n"
TEST_TRIPLE = "from toy import scale\n\n\ndef test_scale_triples():\n    assert scale(2) == 6\n"
TEST_QUAD = "from toy import scale\n\n\ndef test_scale_quadruples():\n    assert scale(2) == 8\n"


def _prove(work: pr.Work) -> pr.PortedTestProof:
    """Run the ported tests on the PR tree's ``src/`` at the red and the green ref."""
    outcome = {}
    for state, ref in (("red", work.red_ref), ("green", work.green_ref)):
        tree = work.repo.parent / f"tree-{state}"
        tree.mkdir()
        archive = git.git(work.repo, "archive", "--format=tar", ref, "src", binary=True).data
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
        for test in work.tests:
            (tree / test).parent.mkdir(parents=True, exist_ok=True)
            (tree / test).write_bytes(git.show_file(work.repo, work.head, test) or b"")
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *work.tests],
            cwd=tree, env={**os.environ, "PYTHONPATH": str(tree / "src")},
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        outcome[state] = "passed" if done.returncode == 0 else "failed"
    red, green = outcome["red"], outcome["green"]
    return pr.PortedTestProof(red, green, red, green, "clean")


def _describe(project):
    return lambda cut: pr_text.texts(project, cut, "3 passed")


def _patch(project, line, path, text, message=MESSAGE, test=None):
    """Commit one edit on the line's applied tree, export it, and carry its ported test."""
    commit_edit(project.src(line), path, text, message)
    refresh(project, line)
    patches = pr.candidates(project, line, [])
    if test is not None:
        form = pr.upstream_form_dir(project, line, patches[-1]) / test[0]
        form.parent.mkdir(parents=True, exist_ok=True)
        form.write_text(test[1])
    return patches[-1]


@pytest.fixture
def toy_pr(toy):
    (toy.root / "upstream" / "pr-templates").mkdir()
    (toy.root / "upstream" / "pr-templates" / "toy.md").write_text(TEMPLATE)
    apply(toy, toy_line(toy))
    return toy


def _am_onto_release(project, line, mbox: Path) -> Path:
    """Apply the mbox with plain `git am` on a fresh copy of the release tree."""
    copy = project.root / "am-check"
    subprocess.run(["git", "clone", "-q", "-b", "upstream", str(project.src(line)), str(copy)],
                   check=True)  # fmt: skip
    subprocess.run(["git", "-C", str(copy), "-c", "user.name=U", "-c", "user.email=u@x",
                    "am", "-q", str(mbox)], check=True)  # fmt: skip
    return copy


def test_a_cut_is_fix_then_ported_test_with_a_clean_pr_text(toy_pr):
    line = toy_line(toy_pr)
    patch = _patch(toy_pr, line, "src/toy/core.py", TRIPLE,
                   test=("tests/test_triple.py", TEST_TRIPLE))  # fmt: skip
    cut = pr.cut(toy_pr, line, patch, _prove, _describe(toy_pr))
    assert cut.proof is not None and cut.proof.proven
    assert cut.branch is None, "no submodule: the mbox is the deliverable"
    copy = _am_onto_release(toy_pr, line, cut.folder / f"{cut.slug}.mbox")
    subjects = git.query(copy, "log", "--format=%s", "origin/upstream..HEAD").splitlines()
    assert subjects == ["Test: triple instead of double", "Triple instead of double"]
    assert (copy / "tests" / "test_triple.py").read_text() == TEST_TRIPLE
    body = git.query(copy, "log", "-1", "--format=%B", "HEAD~1")
    assert "Upstream-Status" not in body and "Test: tests/toy" not in body
    text = (cut.folder / "PR.md").read_text()
    assert text.startswith("# Triple instead of double\n\n## Purpose\n\nThe toy doubles")
    assert "Fixes #1" in text, "an issue of the same repository"
    assert "pytest tests/test_triple.py" in text and "3 passed" in text
    assert pr_text.internal(text, toy_pr) == []
    send = (cut.folder / "SEND.md").read_text()
    assert "git am <path to this folder>/triple-instead-of-double.mbox" in send
    assert "gh pr create" in send and "--body-file" in send
    assert not (toy_pr.build / "pr" / ".work" / line.id).exists(), "scratch is removed"
    assert git.query(toy_pr.src(line), "branch", "--list", "pr/*") == ""
    assert apply(toy_pr, line) is False, "cutting a PR must not disturb the applied tree"


def test_an_issue_of_the_same_repo_is_fixed_and_others_are_referred_to(toy_pr):
    line = toy_line(toy_pr)
    assert pr.reference("https://example.invalid/toy/issues/7", line) == "Fixes #7"
    assert pr.reference("https://example.invalid/other/issues/7", line).startswith("Refs ")
    assert pr.reference("https://example.invalid/toy/pull/7", line).startswith("Refs ")


def test_a_patch_that_needs_an_earlier_one_is_cut_as_a_series(toy_pr):
    line = toy_line(toy_pr)
    _patch(toy_pr, line, "src/toy/core.py", TRIPLE, test=("tests/test_triple.py", TEST_TRIPLE))
    second = MESSAGE.replace("Triple instead of double", "Quadruple instead of triple")
    patch = _patch(toy_pr, line, "src/toy/core.py", QUAD, second,
                   test=("tests/test_quadruple.py", TEST_QUAD))  # fmt: skip
    cut = pr.cut(toy_pr, line, patch, _prove, _describe(toy_pr))
    assert [link.stem for link in cut.links] == [
        "triple-instead-of-double", "quadruple-instead-of-triple"]  # fmt: skip
    assert cut.proof is not None and cut.proof.proven
    copy = _am_onto_release(toy_pr, line, cut.folder / f"{cut.slug}.mbox")
    assert git.query(copy, "rev-list", "--count", "origin/upstream..HEAD") == "4"
    text = (cut.folder / "PR.md").read_text()
    assert "needs the earlier commits of this series" in text
    assert "- Triple instead of double" in text


def test_a_patch_cut_on_the_newest_line_that_carries_it(toy_pr):
    line = toy_line(toy_pr)
    patch = _patch(toy_pr, line, "src/toy/core.py", TRIPLE)
    project = add_line(toy_pr, "1.1")
    assert pr.base_line(project, project.lines["toy@1.0"], patch).id == "toy@1.0"
    newer = project.lines["toy@1.1"]
    (project.patches(newer) / patch.path.name).write_bytes(patch.path.read_bytes())
    (project.patches(newer) / "series").write_text(f"{patch.path.name}\n")
    assert pr.base_line(project, project.lines["toy@1.0"], patch) == newer


def test_a_failed_cut_leaves_nothing_behind(toy_pr):
    line = toy_line(toy_pr)
    patch = _patch(toy_pr, line, "src/toy/core.py", TRIPLE,
                   test=("tests/test_triple.py", TEST_TRIPLE))  # fmt: skip
    cut = pr.cut(toy_pr, line, patch, _prove, _describe(toy_pr))
    assert cut.folder.is_dir()
    # now the ported test passes without the fix too: it proves nothing, so no PR
    form = pr.upstream_form_dir(toy_pr, line, patch) / "tests" / "test_triple.py"
    form.write_text("def test_scale_triples():\n    assert True\n")
    with pytest.raises(PatchError, match="the ported test is not proven"):
        pr.cut(toy_pr, line, patch, _prove, _describe(toy_pr))
    assert not cut.folder.exists(), "the earlier cut's folder must not outlive a failed one"
    assert not (toy_pr.build / "pr" / ".work" / line.id).exists()
    assert list((toy_pr.build / "pr" / line.id).iterdir()) == []


def test_a_patch_without_a_ported_test_is_not_cut(toy_pr):
    line = toy_line(toy_pr)
    patch = _patch(toy_pr, line, "src/toy/core.py", TRIPLE)
    with pytest.raises(PatchError, match="no upstream-form test"):
        pr.cut(toy_pr, line, patch, _prove, _describe(toy_pr))
    assert not (toy_pr.build / "pr" / line.id).exists()
    assert any("no upstream-form test" in p for p in lint_series(toy_pr, line))


def test_generated_metadata_needs_its_upstream_form_and_is_cut_with_it(toy_pr):
    line = toy_line(toy_pr)
    repo = toy_pr.src(line)
    (repo / "toy-1.0.dist-info").mkdir()
    (repo / "toy-1.0.dist-info" / "METADATA").write_text("Name: toy\n")
    git.git(repo, "add", "-f", "toy-1.0.dist-info")
    git.git(repo, "commit", "-q", "-m", "metadata base")
    git.git(repo, "branch", "-f", "upstream", "HEAD")
    patch = _patch(toy_pr, line, "toy-1.0.dist-info/METADATA", "Name: toy\nRequires-Dist: x\n",
                   test=("tests/test_requires.py", "def test_requires():\n    pass\n"))  # fmt: skip
    problems = "\n".join(lint_series(toy_pr, line))
    assert "generated packaging metadata" in problems and "fix.patch" in problems
    with pytest.raises(PatchError, match=r"fix\.patch"):
        pr.cut(toy_pr, line, patch, None, _describe(toy_pr))
    fix = pr.upstream_form_dir(toy_pr, line, patch) / "fix.patch"
    git.git(repo, "checkout", "-q", "-b", "form", "upstream")
    (repo / "pyproject.toml").write_text("[project]\nname='toy'\ndependencies = ['x']\n")
    why = "The toy imports x at module level, so an install without x cannot import it."
    git.git(repo, "commit", "-q", "-am", f"Declare x as a requirement\n\n{why}")
    fix.write_text(git.git(repo, "format-patch", "--stdout", "-1", "HEAD").stdout)
    git.git(repo, "checkout", "-q", "patched")
    cut = pr.cut(toy_pr, line, patch, None, _describe(toy_pr))
    mbox = (cut.folder / f"{cut.slug}.mbox").read_text()
    assert "+++ b/pyproject.toml" in mbox and "dist-info" not in mbox
    text = (cut.folder / "PR.md").read_text()
    assert text.startswith("# Declare x as a requirement\n") and "module level" in text
    assert lint_series(toy_pr, line) == []


def test_cut_prs_returns_each_cut_and_its_send_commands(toy_pr):
    line = toy_line(toy_pr)
    _patch(toy_pr, line, "src/toy/core.py", TRIPLE, test=("tests/test_triple.py", TEST_TRIPLE))
    second = MESSAGE.replace("Triple instead of double", "Quadruple instead of triple")
    _patch(toy_pr, line, "src/toy/core.py", QUAD, second)  # no ported test: cannot be cut
    run = cut_prs(toy_pr, [], prove=False)
    cut, failed = run.cuts
    assert (cut.line, cut.patch) == (line, "triple-instead-of-double.patch")
    assert cut.pr is not None and set(cut.pr.texts) == {"PR.md", "SEND.md"}
    assert cut.pr.texts["SEND.md"] == (cut.pr.folder / "SEND.md").read_text()
    assert cut.send_commands[0] == "git clone https://example.invalid/toy.git && cd toy"
    assert cut.send_commands[-1].startswith('  --title "Triple instead of double"')
    assert failed.pr is None and "no upstream-form test" in failed.error
    assert failed.send_commands == [] and run.failed == [failed]


def test_cut_prs_cuts_each_patch_once_on_the_newest_line_that_carries_it(toy_pr):
    line = toy_line(toy_pr)
    patch = _patch(toy_pr, line, "src/toy/core.py", TRIPLE,
                   test=("tests/test_triple.py", TEST_TRIPLE))  # fmt: skip
    project = add_line(toy_pr, "1.1")
    assert cut_prs(project, ["toy"], prove=False).cuts == [], "the newest line carries none"
    (cut,) = cut_prs(project, ["toy@1.0"], prove=False).cuts
    assert (cut.line.id, cut.patch, cut.error) == ("toy@1.0", patch.path.name, "")
    newer = project.lines["toy@1.1"]
    shutil.copy(patch.path, project.patches(newer) / patch.path.name)
    (project.patches(newer) / "series").write_text(f"{patch.path.name}\n")
    shutil.copytree(pr.upstream_form_dir(project, line, patch),
                    pr.upstream_form_dir(project, newer, patch))  # fmt: skip
    run = cut_prs(project, ["toy@1.0", "toy@1.1"], prove=False)
    assert [(c.line.id, c.patch) for c in run.cuts] == [("toy@1.1", patch.path.name)]


def test_cut_prs_refuses_an_unknown_patch_before_cutting_anything(toy_pr):
    line = toy_line(toy_pr)
    _patch(toy_pr, line, "src/toy/core.py", TRIPLE, test=("tests/test_triple.py", TEST_TRIPLE))
    names = ["triple-instead-of-double.patch", "nope.patch"]
    with pytest.raises(UsageError, match=r"not in patches/toy/1\.0/series: nope\.patch"):
        cut_prs(toy_pr, [], patches=names, prove=False)
    assert not (toy_pr.build / "pr").exists()


def _cli(root, *args):
    env = {**os.environ, "FP4STACK_ROOT": str(root)}
    return subprocess.run([sys.executable, "-m", "fp4stack", *args], env=env,
                          capture_output=True, text=True, check=False)  # fmt: skip


def test_exit_codes(toy_pr):
    line = toy_line(toy_pr)
    done = _cli(toy_pr.root, "pr", "--no-prove")
    assert done.returncode == 0 and "no patches to send upstream" in done.stdout
    _patch(toy_pr, line, "src/toy/core.py", TRIPLE, test=("tests/test_triple.py", TEST_TRIPLE))
    done = _cli(toy_pr.root, "pr", "--no-prove")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1/1 PR(s) cut" in done.stdout and "gh pr create" in done.stdout
    second = MESSAGE.replace("Triple instead of double", "Quadruple instead of triple")
    _patch(toy_pr, line, "src/toy/core.py", QUAD, second)  # no ported test: cannot be cut
    done = _cli(toy_pr.root, "pr", "--no-prove")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1/2 PR(s) cut" in done.stdout and "NOT CUT" in done.stdout
    assert not (toy_pr.build / "pr" / line.id / "quadruple-instead-of-triple").exists()
    unknown = _cli(toy_pr.root, "pr", "--patch", "nope.patch")
    assert unknown.returncode == 2 and "not in patches/toy/1.0/series: nope.patch" in unknown.stderr


def test_with_the_submodule_the_pr_is_a_branch_on_upstream_history(toy_pr):
    line = toy_line(toy_pr)
    patch = _patch(toy_pr, line, "src/toy/core.py", TRIPLE,
                   test=("tests/test_triple.py", TEST_TRIPLE))  # fmt: skip
    # the upstream's history: the release tree committed in upstream/toy, pinned by commit
    clone = toy_pr.root / "upstream" / "toy"
    subprocess.run(["git", "clone", "-q", "-b", "upstream", str(toy_pr.src(line)), str(clone)],
                   check=True)  # fmt: skip
    tag_commit = git.rev_parse(clone, "HEAD")
    pins = toy_pr.root / "upstream" / "pins.toml"
    pins.write_text(pins.read_text().replace("0" * 40, tag_commit))
    project = load_project(toy_pr.root)
    line = toy_line(project)
    cut = pr.cut(project, line, patch, _prove, _describe(project))
    assert cut.branch == "pr/triple-instead-of-double"
    assert git.query(clone, "rev-list", "--count", f"{tag_commit}..{cut.branch}") == "2"
    assert git.query(clone, "merge-base", tag_commit, cut.branch) == tag_commit
    # a failed re-cut takes the branch away with the folder
    form = pr.upstream_form_dir(project, line, patch) / "tests" / "test_triple.py"
    form.write_text("def test_scale_triples():\n    assert True\n")
    with pytest.raises(PatchError):
        pr.cut(project, line, patch, _prove, _describe(project))
    assert git.query(clone, "branch", "--list", "pr/*") == ""
    assert not cut.folder.exists()
