"""`make test`'s closing summary names each failed test, where a CI log's tail shows it."""

from __future__ import annotations

import sys
from pathlib import Path

from fp4stack.cli.testing import summary
from fp4stack.testing.pytest_run import run_pytest
from fp4stack.testing.suites import Outcome

SUITE = """
def test_fine():
    pass

def test_broken():
    assert 1 == 2, "one is not two"
"""


def test_the_summary_ends_by_naming_the_failed_test_and_its_message(tmp_path: Path) -> None:
    (tmp_path / "test_mixed.py").write_text(SUITE)
    result = run_pytest(Path(sys.executable), ["test_mixed.py"], cwd=tmp_path, echo=False)
    assert not result.ok

    text = summary([Outcome("demo@1.0", has_upstream=False, ours=result)])

    failed = text.split("\nfailed:\n", 1)[1]
    assert "demo@1.0 (our tests): FAILED test_mixed.py::test_broken" in failed
    assert "one is not two" in failed
    assert "test_fine" not in failed
    assert text.rstrip().endswith("1 passed, 1 failed, 0 skipped")


def test_a_green_run_has_no_failed_section(tmp_path: Path) -> None:
    (tmp_path / "test_green.py").write_text("def test_fine():\n    pass\n")
    result = run_pytest(Path(sys.executable), ["test_green.py"], cwd=tmp_path, echo=False)

    assert "failed:" not in summary([Outcome("demo@1.0", has_upstream=False, ours=result)])
