"""`fp4stack lint` rejects patches that do not say why, when they can go, and what proves them."""

from __future__ import annotations

from fp4stack.stack.apply import apply
from fp4stack.stack.lint import lint_series
from fp4stack.stack.refresh import refresh
from fp4stack.stack.series import read_series

from ..toy_upstream import MESSAGE, commit_edit, toy_line


def _lint_with(toy, message):
    upstream = toy_line(toy)
    apply(toy, upstream)
    commit_edit(toy.src(upstream), "src/toy/core.py", "def scale(x):\n    return 3 * x\n", message)
    refresh(toy, upstream)
    # the regression test as the upstream would take it, which a Pending patch needs
    for name in read_series(toy.patches(upstream)):
        form = toy.patches(upstream) / "upstream" / name.removesuffix(".patch") / "tests"
        form.mkdir(parents=True, exist_ok=True)
        (form / "test_scale.py").write_text("def test_triples():\n    pass\n")
    return lint_series(toy, upstream)


def test_a_complete_header_is_clean(toy):
    assert _lint_with(toy, MESSAGE) == []


def test_missing_status_bug_and_test_are_each_reported(toy):
    bare = MESSAGE.split("\n\nUpstream-Status")[0] + "\n"
    problems = "\n".join(_lint_with(toy, bare))
    assert "Upstream-Status" in problems and "Bug:" in problems and "Test:" in problems


def test_malformed_status_and_unknown_test_are_reported(toy):
    message = MESSAGE.replace("Pending [toy upstream has no tracker]", "Maybe later").replace(
        "test_triples", "test_nowhere"
    )
    problems = "\n".join(_lint_with(toy, message))
    assert "'Maybe later' is not" in problems
    assert "no test_nowhere in tests/toy/test_scale.py" in problems


def test_a_patch_without_a_description_is_reported(toy):
    message = "Triple\n\n" + MESSAGE.split("\n\n", 2)[2]
    assert any("no description" in p for p in _lint_with(toy, message))


def test_series_and_files_must_agree(toy):
    upstream = toy_line(toy)
    patch_dir = toy.patches(upstream)
    (patch_dir / "stray.patch").write_text("not listed\n")
    (patch_dir / "series").write_text("ghost.patch\n")
    problems = "\n".join(lint_series(toy, upstream))
    assert "lists ghost.patch, which does not exist" in problems
    assert "stray.patch: not listed" in problems


def test_a_backport_must_cite_the_upstream_commit(toy):
    backport = MESSAGE.replace("Pending [toy upstream has no tracker]", "Backport [1.1]")
    assert any("Backport needs `Upstream-Commit:`" in p for p in _lint_with(toy, backport))


def test_a_cited_backport_is_clean(toy):
    cited = MESSAGE.replace("Pending [toy upstream has no tracker]", "Backport [1.1]") + (
        "Upstream-Commit: https://github.com/toy/toy/commit/0123456789abcdef\n"
    )
    assert _lint_with(toy, cited) == []


def test_fixed_differently_names_where(toy):
    status = "Inappropriate [fixed differently upstream in main]"
    vague = MESSAGE.replace("Pending [toy upstream has no tracker]", status)
    assert any("needs a PR" in p for p in _lint_with(toy, vague))
