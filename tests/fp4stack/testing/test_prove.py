"""A patch is proven only when each of its tests fails on pristine and passes patched."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from fp4stack.core import log as logging
from fp4stack.stack.apply import apply
from fp4stack.stack.refresh import refresh
from fp4stack.stack.series import PatchInfo
from fp4stack.testing import envs
from fp4stack.testing.prove import _verdict, prove
from fp4stack.testing.pytest_run import PytestResult, run_pytest

from ..toy_upstream import commit_edit, toy_line


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


TRIPLE = "def scale(x):\n    return x * 3\n"
TRIPLES = "from toy import scale\n\ndef test_triples():\n    assert scale(2) == 6\n"


@pytest.fixture
def toy_venv(toy, tmp_path):
    """The toy line with its one patch, and a venv whose site-packages holds the patched
    toy, laid out as its wheel would install it, and sees this venv's pytest (a .pth)."""
    line = toy_line(toy)
    (toy.root / "tests" / "toy" / "test_scale.py").write_text(TRIPLES)
    apply(toy, line)
    commit_edit(toy.src(line), "src/toy/core.py", TRIPLE)
    refresh(toy, line)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    site = envs.site_packages(venv)
    shutil.copytree(toy.src(line) / "src" / "toy", site / "toy")
    (site / "ours.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return line, venv


def _states_run(toy, line, venv, patched=None) -> list[str]:
    said: list[str] = []
    logging.set_sink(lambda message, kind: said.append(message))
    try:
        (proof,) = prove(toy, line, venv, patched=patched)
    finally:
        logging.set_sink(None)
    assert proof.proven, proof
    return [s for s in ("pristine", "patched") if any(f"on {s} code" in m for m in said)]


def test_prove_runs_both_states_in_the_venv(toy, toy_venv):
    line, venv = toy_venv
    assert _states_run(toy, line, venv) == ["pristine", "patched"]


def test_prove_reads_the_patched_state_from_a_run_that_holds_every_test(toy, toy_venv):
    """`make test` has just run tests/<upstream>/ on the installed patched build: prove
    takes the patched verdicts from it instead of running the same tests again."""
    line, venv = toy_venv
    ours = run_pytest(venv / "bin" / "python", ["tests/toy"], cwd=toy.root, echo=False)
    assert ours.outcomes == {"tests/toy/test_scale.py::test_triples": "PASSED"}
    assert _states_run(toy, line, venv, patched=ours) == ["pristine"]

    elsewhere = run_pytest(Path(sys.executable), ["--version"], cwd=toy.root, echo=False)
    assert _states_run(toy, line, venv, patched=elsewhere) == ["pristine", "patched"], (
        "a run without the patch's test is no evidence: the patched state runs"
    )
