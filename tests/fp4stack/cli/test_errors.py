"""Failures of the tools fp4stack drives end as one ERROR line, a hint, and an exit code.

Each case goes through the real command line, the way a user meets it: no traceback, the
failure named on one ``ERROR:`` line with a ``hint:`` below it, and the failed command's
own output (when there is one) under that, indented.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from fp4stack.core import git
from fp4stack.stack.apply import apply
from fp4stack.stack.refresh import refresh

from ..toy_upstream import commit_edit, toy_line


def _fp4stack(root: Path, *args: str, env: dict[str, str] | None = None):
    full_env = {**os.environ, "FP4STACK_ROOT": str(root), **(env or {})}
    return subprocess.run([sys.executable, "-m", "fp4stack", *args], env=full_env,
                          capture_output=True, text=True, check=False)  # fmt: skip


def _assert_one_error(result, code: int, *phrases: str) -> list[str]:
    """One ERROR line naming ``phrases``, then a hint; return the lines after the hint."""
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.splitlines()
    errors = [i for i, line in enumerate(lines) if line.startswith("ERROR:")]
    assert len(errors) == 1, result.stderr
    first = errors[0]
    for phrase in phrases:
        assert phrase in lines[first], lines[first]
    assert lines[first + 1].startswith("hint: "), result.stderr
    return lines[first + 2 :]


def test_failing_git_archive(toy):
    """A submodule at the pinned commit whose objects are damaged: `git archive` fails."""
    checkout = toy.root / "upstream" / "toy"
    checkout.mkdir()
    git.init(checkout)
    (checkout / "README").write_text("toy\n")
    commit = git.commit_all(checkout, "toy 1.0", "2000-01-01T00:00:00Z")
    tree = git.query(checkout, "rev-parse", f"{commit}^{{tree}}")
    (checkout / ".git" / "objects" / tree[:2] / tree[2:]).unlink()
    pins = toy.root / "upstream" / "pins.toml"
    pins.write_text(pins.read_text().replace("0" * 40, commit))

    below = _assert_one_error(
        _fp4stack(toy.root, "apply"), 1, "toy@1.0: cannot prepare the pristine tree", "git"
    )
    assert any(line.startswith("  | ") for line in below), "git's own message goes below"


def test_failing_git_am(toy):
    upstream = toy_line(toy)
    apply(toy, upstream)
    commit_edit(toy.src(upstream), "src/toy/core.py", "def scale(x):\n    return x * 3\n")
    refresh(toy, upstream)
    patch = toy.patches(upstream) / "triple-instead-of-double.patch"
    patch.write_text(patch.read_text().replace("-    return x * 2", "-    return x * 5"))

    result = _fp4stack(toy.root, "apply")
    below = _assert_one_error(result, 1, "triple-instead-of-double.patch does not apply")
    assert "git am --continue" in result.stderr
    assert any("Patch failed at" in line for line in below), "git am's output goes below"


def test_failing_pip_install(toy):
    """The test venv's first install cannot be satisfied: pip's reason comes below."""
    pins = toy.root / "upstream" / "pins.toml"
    pins.write_text(pins.read_text().replace('torch = "2.13.0"', 'torch = "0.0.0.dev0"'))
    offline = {"PIP_NO_INDEX": "1", "PIP_CONFIG_FILE": os.devnull, "PIP_FIND_LINKS": ""}

    result = _fp4stack(toy.root, "prove", "toy", env=offline)
    below = _assert_one_error(result, 1, "cannot prepare the test environment", "pip")
    assert any("torch==0.0.0.dev0" in line for line in below), result.stderr


def test_unreadable_pins_file(toy):
    (toy.root / "upstream" / "pins.toml").write_bytes(b"[toy]\ngit = '\xff\xfe'\n")
    _assert_one_error(_fp4stack(toy.root, "apply"), 2, "pins.toml", "not valid TOML")
