"""Release lines: pins.toml's shape, naming a line or an upstream, and one wheel per line."""

from __future__ import annotations

import pytest

from fp4stack.build.wheel import build_wheel
from fp4stack.core.errors import UsageError
from fp4stack.stack.apply import apply
from fp4stack.stack.pins import load_project
from fp4stack.testing.suites import deselections, line_env, selections, suite_skip_reason

from ..toy_upstream import SHARED, add_line, commit_edit, toy_line


def test_a_line_is_named_upstream_at_version_and_has_its_own_dirs(toy):
    line = toy_line(toy)
    assert (line.id, line.upstream, line.version, line.tag) == ("toy@1.0", "toy", "1.0", "v1.0")
    assert toy.src(line) == toy.root / "build" / "src" / "toy@1.0"
    assert toy.patches(line) == toy.root / "patches" / "toy" / "1.0"
    assert toy.ci_list("deselect", line) == toy.root / "ci" / "deselect" / "toy" / "1.0.txt"
    assert line.tests_dir_name == "toy", "our tests are shared by the lines of an upstream"
    assert line_env(line) == {"FP4STACK_LINE": "toy@1.0"}


def test_a_bare_upstream_selects_all_its_lines_oldest_first(toy):
    project = add_line(add_line(toy, "1.10"), "1.2")
    ids = [line.id for line in project.select(["toy"])]
    assert ids == ["toy@1.0", "toy@1.2", "toy@1.10"], "release order, not string order"
    assert [line.id for line in project.select([])] == ids
    assert [line.id for line in project.select(["toy@1.2", "toy"])][:1] == ["toy@1.2"]
    assert project.newest("toy").id == "toy@1.10"


def test_an_unknown_line_names_the_lines_we_have(toy):
    project = add_line(toy, "1.1")
    with pytest.raises(UsageError, match=r"unknown line toy@2\.0 \(lines: toy@1\.0, toy@1\.1"):
        project.select(["toy@2.0"])
    with pytest.raises(UsageError) as caught:
        project.line("vllm@1.0")
    assert caught.value.exit_code == 2


def test_a_line_inherits_the_shared_keys_and_may_override_them(toy):
    pins = toy.root / "upstream" / "pins.toml"
    text = pins.read_text().replace('tag = "v1.0"', 'tag = "v1.0"\npackage_root = "lib"')
    pins.write_text(text)
    line = toy_line(load_project(toy.root))
    assert (line.package_root, line.distribution, line.source) == ("lib", "toy", "sdist")


@pytest.mark.parametrize(
    ("pins", "phrase"),
    [
        (SHARED, r'\[toy\] has no \[toy\.lines\."<version>"\] table'),
        (SHARED + '[toy.lines."one"]\n', r"'one' is not a release version"),
        (SHARED + '[toy.lines."1.0"]\ntag = "v1.0"\n', r"missing commit, wheel, env"),
    ],
)
def test_malformed_lines_are_one_clear_usage_error(toy, pins, phrase):
    (toy.root / "upstream" / "pins.toml").write_text(pins)
    with pytest.raises(UsageError, match=phrase):
        load_project(toy.root)


def test_select_and_deselect_lists_are_per_line(toy):
    project = add_line(toy, "1.1")
    old, new = project.lines["toy@1.0"], project.lines["toy@1.1"]
    (project.root / "ci" / "deselect" / "toy").mkdir(parents=True)
    (project.root / "ci" / "deselect" / "toy" / "1.1.txt").write_text("tests/t.py::x  # why\n")
    assert deselections(project, old) == [] and deselections(project, new) == ["tests/t.py::x"]
    assert selections(project, new) == []


def test_every_line_keeps_one_wheel_in_dist(toy):
    project = add_line(toy, "1.1")
    old, new = project.lines["toy@1.0"], project.lines["toy@1.1"]
    apply(project, old)
    first_old = build_wheel(project, old)
    apply(project, new)
    wheel_new = build_wheel(project, new)
    # A new build of toy@1.0 replaces the older build of toy@1.0, not toy@1.1's wheel.
    commit_edit(project.src(old), "src/toy/core.py", "def scale(x):\n    return x * 3\n")
    from fp4stack.stack.refresh import refresh

    refresh(project, old)
    second_old = build_wheel(project, old)
    assert second_old != first_old
    assert sorted(p.name for p in project.dist.iterdir()) == sorted(
        [second_old.name, wheel_new.name]
    )


def test_a_line_env_gets_only_its_own_wheel_and_those_it_names(toy, monkeypatch):
    """An empty ``wheels_from`` adds no other line's wheel (two lines of one distribution
    cannot even be installed together). Venv creation itself is not under test here: the
    recipe handed to it is captured instead."""
    from fp4stack.testing import suites

    project = add_line(toy, "1.1")
    recipes = []
    monkeypatch.setattr(suites.envs, "ensure", lambda venv, recipe: recipes.append(recipe))
    suites.upstream_env(project, project.lines["toy@1.0"])
    (recipe,) = recipes
    assert recipe.extra_wheels == ()
    assert recipe.wheel is not None and "toy-1.0+fp4stack" in recipe.wheel


def test_a_suite_from_a_submodule_says_why_it_is_skipped(toy):
    pins = toy.root / "upstream" / "pins.toml"
    pins.write_text(pins.read_text().replace('commit = "' + "0" * 40 + '"', 'commit = ""'))
    line = toy_line(load_project(toy.root))
    reason = suite_skip_reason(toy, line)
    assert reason.startswith('upstream/pins.toml has no tag commit for toy@1.0 (commit = "")')
    assert "git ls-remote https://example.invalid/toy v1.0" in reason
    line = toy_line(toy)  # commit pinned, submodule not initialized
    assert suite_skip_reason(toy, line).startswith("upstream/toy is not initialized")
    (toy.root / "upstream" / "toy" / ".git").mkdir(parents=True)
    assert suite_skip_reason(toy, line).startswith(
        "upstream/toy lacks toy@1.0's commit 000000000000"
    )
