"""Every pytest run we start reseeds random generators per test, so verdicts reproduce."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from fp4stack.testing.pytest_run import run_pytest

# Each test records its first draw; the run's output is the set of draws.
DRAWS = """
import random, pathlib

def _record(name):
    with pathlib.Path("draws.txt").open("a") as out:
        out.write(f"{name} {random.random()!r}\\n")

def test_a():
    random.random()  # consuming draws must not shift the next test's data
    _record("a")

def test_b():
    _record("b")
"""


@pytest.fixture
def suite(tmp_path, monkeypatch) -> Path:
    """A folder holding DRAWS as a test file. The tests set the seed themselves, even
    inside `FP4STACK_TEST_SEED=n make test`."""
    monkeypatch.delenv("FP4STACK_TEST_SEED", raising=False)
    (tmp_path / "test_draws.py").write_text(DRAWS)
    return tmp_path


def _draws(tmp_path: Path, *args: str, seed: str | None = None) -> dict[str, str]:
    (tmp_path / "draws.txt").unlink(missing_ok=True)
    env = {} if seed is None else {"FP4STACK_TEST_SEED": seed}
    result = run_pytest(Path(sys.executable), [*args], cwd=tmp_path, env=env, echo=False)
    assert result.ok, result.summary
    lines = (tmp_path / "draws.txt").read_text().splitlines()
    return dict(line.split(" ", 1) for line in lines)


def test_the_same_test_draws_the_same_data_in_every_run(suite):
    first = _draws(suite, "test_draws.py")
    assert first == _draws(suite, "test_draws.py")
    assert first["a"] != first["b"], "each test has a seed of its own"


def test_a_test_draws_the_same_data_when_run_alone(suite):
    both = _draws(suite, "test_draws.py")
    assert _draws(suite, "test_draws.py::test_b") == {"b": both["b"]}


def test_the_seed_variable_changes_every_draw(suite):
    default = _draws(suite, "test_draws.py")
    shifted = _draws(suite, "test_draws.py", seed="1")
    assert all(default[name] != shifted[name] for name in default)


def test_a_bad_seed_is_a_usage_error(suite):
    env = {"FP4STACK_TEST_SEED": "one"}
    result = run_pytest(Path(sys.executable), ["test_draws.py"], cwd=suite, env=env, echo=False)
    assert result.returncode == 4  # pytest's usage-error exit code
