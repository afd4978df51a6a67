"""The workflows below the CLI (``fp4stack.operations``), called directly on the toy line.

The verbs' output and exit codes are checked through the command line elsewhere
(cli/test_cli, cli/test_errors, stack/test_pr, test_drift_rebase); here the functions' data
and rules.
"""

from __future__ import annotations

import pytest

from fp4stack.core.errors import UsageError
from fp4stack.operations import applied_trees, clean, full_test, patch_lint, patch_proofs
from fp4stack.operations.patched_wheels import build_wheels
from fp4stack.testing.prove import PatchProof
from fp4stack.testing.pytest_run import PytestResult
from fp4stack.testing.suites import Outcome, read_records

from ..toy_upstream import MESSAGE, add_line, commit_edit, toy_line

TRIPLE = "def scale(x):\n    return x * 3\n"
PATCH = "triple-instead-of-double.patch"


def _result(returncode: int, **counts: int) -> PytestResult:
    return PytestResult(returncode, counts=counts)


def _proof(proven: bool) -> PatchProof:
    return PatchProof("toy@1.0", "p.patch", ("t.py::t",), "fail", "pass" if proven else "fail")


@pytest.mark.parametrize(
    ("outcomes", "expected"),
    [
        ([Outcome("a", ours=_result(0, passed=3))], True),
        ([Outcome("a", ours=_result(0, passed=3), proofs=[_proof(True)])], True),
        ([Outcome("a", ours=_result(0, passed=3), proofs=[_proof(False)])], False),
        ([Outcome("a", suite=_result(1, passed=3, failed=1), ours=_result(0, passed=1))], False),
        ([Outcome("a", ours=_result(5))], False),  # pytest collected nothing
        ([Outcome("a", suite_note="skipped")], False),  # nothing ran at all
        ([Outcome("a", ours=_result(0, passed=1)), Outcome("b", ours=_result(2))], False),
    ],
)
def test_a_test_run_is_green_only_when_something_passed_and_nothing_failed(outcomes, expected):
    assert full_test.green(outcomes) is expected
    assert full_test.FullTestRun(outcomes).green is expected


def test_the_full_test_runs_tool_tests_only_when_no_line_is_named(toy, monkeypatch):
    calls = []

    def run_all(project, lines, *, tools, jobs):
        calls.append(([ln.id for ln in lines], tools, jobs))
        suite = PytestResult(0, counts={"passed": 2, "skipped": 1})
        return [Outcome(ln.id, suite=suite, ours=_result(0, passed=1)) for ln in lines]

    monkeypatch.setattr(full_test.side_by_side, "run_all", run_all)
    run = full_test.run(toy, [], jobs=3)
    assert run.green and calls[-1] == (["toy@1.0"], True, 3)
    assert read_records(toy) == {"toy@1.0": "2 passed, 1 skipped"}, "pr quotes these counts"
    full_test.run(toy, ["toy"], jobs=1)
    assert calls[-1] == (["toy@1.0"], False, 1)
    full_test.run(toy, [], tools=False, jobs=1)
    assert calls[-1][1] is False
    with pytest.raises(UsageError, match="--jobs must be 1 or more, not 0"):
        full_test.run(toy, [], jobs=0)
    with pytest.raises(UsageError, match="unknown line toy@9"):
        full_test.run(toy, ["toy@9"], jobs=0)  # the line is named first, as it is typed first


def test_prove_lines_builds_each_line_env_and_says_whether_all_are_proven(toy, monkeypatch):
    venvs, proofs = [], {"toy@1.0": [_proof(True)], "toy@1.1": [_proof(False)]}
    project = add_line(toy, "1.1")
    monkeypatch.setattr(patch_proofs.suites, "upstream_env",
                        lambda project, line: venvs.append(line.id) or project.root)  # fmt: skip
    monkeypatch.setattr(patch_proofs, "prove", lambda project, line, venv: proofs[line.id])
    run = patch_proofs.prove_lines(project, ["toy@1.0"])
    assert run.proven and venvs == ["toy@1.0"]
    run = patch_proofs.prove_lines(project, [])
    assert not run.proven and len(run.proofs) == 2 and venvs[1:] == ["toy@1.0", "toy@1.1"]
    assert patch_proofs.ProveRun([]).proven, "nothing to prove is no failure"


def test_apply_and_refresh_lines_report_what_changed(toy):
    (line,) = applied_trees.apply_lines(toy, ["toy"])
    assert (toy.src(line) / "src" / "toy" / "core.py").is_file()
    assert [e.changed for e in applied_trees.refresh_lines(toy, [], check=True)] == [[]]
    commit_edit(toy.src(line), "src/toy/core.py", TRIPLE)
    (checked,) = applied_trees.refresh_lines(toy, [], check=True)
    assert checked.line == line and checked.changed == ["series", PATCH]
    assert not (toy.patches(line) / PATCH).exists(), "a check writes nothing"
    (done,) = applied_trees.refresh_lines(toy, [])
    assert done.changed == checked.changed
    assert (toy.patches(line) / PATCH).is_file()


def test_patch_lint_checks_the_headers_then_a_re_export(toy):
    run = patch_lint.lint_lines(toy, [], export_check=False)
    assert [ln.id for ln in run.lines] == ["toy@1.0"] and run.problems == []
    applied_trees.apply_lines(toy, [])
    # not Pending: a patch to send upstream would also need its ported test
    message = MESSAGE.replace("Pending [toy upstream has no tracker]", "Inappropriate [a toy]")
    commit_edit(toy.src(toy_line(toy)), "src/toy/core.py", TRIPLE, message)
    applied_trees.refresh_lines(toy, [])
    patch = toy.patches(toy_line(toy)) / PATCH
    patch.write_text(patch.read_text().replace("From 0000000", "From 1111111", 1))
    assert patch_lint.lint_lines(toy, [], export_check=False).problems == []
    (problem,) = patch_lint.lint_lines(toy, []).problems
    assert problem == ("patches/toy/1.0/triple-instead-of-double.patch: a re-export would "
                       "change it; run `make refresh`")  # fmt: skip


def test_build_wheels_returns_one_wheel_per_line_in_order(toy):
    project = add_line(toy, "1.1")
    wheels = build_wheels(project, [])
    assert [w.parent for w in wheels] == [project.dist, project.dist]
    assert [w.name.split("+")[0] for w in wheels] == ["toy-1.0", "toy-1.1"]
    assert all(w.is_file() for w in wheels)


def test_clean_removes_generated_trees_and_keeps_the_tool_venv(toy):
    venv = toy.build / "venv"
    for path in (toy.dist, toy.build / "src" / "toy@1.0", toy.build / "overlay",
                 venv / "tool", venv / "toy@1.0"):  # fmt: skip
        path.mkdir(parents=True)
    removed = clean.clean(toy)
    assert removed == [toy.dist, toy.build / "src", toy.build / "overlay"]
    assert toy.cache.is_dir() and (venv / "toy@1.0").is_dir()
    assert clean.clean(toy, envs=True, cache=True) == [venv / "toy@1.0", toy.cache]
    assert (venv / "tool").is_dir(), "the venv fp4stack runs from stays"
    assert clean.clean(toy, envs=True, cache=True) == []
