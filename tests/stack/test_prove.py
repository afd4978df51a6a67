"""A patch is proven only when each of its tests fails on pristine and passes patched."""

from __future__ import annotations

from pathlib import Path

from fp4stack.stack.series import PatchInfo
from fp4stack.testing.prove import _verdict
from fp4stack.testing.pytest_run import PytestResult

from .conftest import toy_line


def _patch(*tests):
    return PatchInfo(Path("p.patch"), "s", "d", {"test": list(tests)}, ("f",))


def _results(pristine, patched):
    return {"pristine": PytestResult(1, pristine), "patched": PytestResult(0, patched)}


def test_red_then_green_is_proven(toy):
    proof = _verdict(
        toy_line(toy),
        _patch("t.py::test_a"),
        _results({"t.py::test_a[x]": "FAILED"}, {"t.py::test_a[x]": "PASSED"}),
    )
    assert proof.proven


def test_a_test_that_passes_on_pristine_proves_nothing(toy):
    proof = _verdict(
        toy_line(toy),
        _patch("t.py::test_a", "t.py::test_b"),
        _results(
            {"t.py::test_a": "FAILED", "t.py::test_b": "PASSED"},
            {"t.py::test_a": "PASSED", "t.py::test_b": "PASSED"},
        ),
    )
    assert not proof.proven and proof.pristine == "mixed"


def test_a_test_that_cannot_be_collected_on_pristine_counts_as_red(toy):
    proof = _verdict(
        toy_line(toy),
        _patch("t.py::test_a"),
        _results({"t.py": "ERROR"}, {"t.py::test_a": "PASSED"}),
    )
    assert proof.proven


def test_skipped_on_patched_is_not_green(toy):
    proof = _verdict(
        toy_line(toy),
        _patch("t.py::test_a"),
        _results({"t.py::test_a": "FAILED"}, {"t.py::test_a": "SKIPPED"}),
    )
    assert not proof.proven


def test_a_patch_with_no_test_is_never_proven(toy):
    proof = _verdict(toy_line(toy), _patch(), _results({}, {}))
    assert not proof.proven


def test_a_test_skipped_in_both_states_is_left_out_of_the_verdict(toy):
    """A GPU-only test skips on a CPU machine: the patch rests on its other tests."""
    proof = _verdict(
        toy_line(toy),
        _patch("t.py::test_cpu", "t.py::test_gpu"),
        _results(
            {"t.py::test_cpu": "FAILED", "t.py::test_gpu": "SKIPPED"},
            {"t.py::test_cpu": "PASSED", "t.py::test_gpu": "SKIPPED"},
        ),
    )
    assert proof.proven and proof.skipped_here == ("t.py::test_gpu",)


def test_a_patch_whose_every_test_skips_here_is_not_proven(toy):
    proof = _verdict(
        toy_line(toy),
        _patch("t.py::test_gpu"),
        _results({"t.py::test_gpu": "SKIPPED"}, {"t.py::test_gpu": "SKIPPED"}),
    )
    assert not proof.proven and proof.pristine == proof.patched == "skip"
