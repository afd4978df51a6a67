"""Each compressed-tensors wheel we build, installed alone beside torch in a fresh venv
(pip's sources, dependencies resolved as `pip install` would), imports. compressed-tensors
0.17.0 as released does not: it imports psutil without declaring it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from fp4stack.build.wheel import patched_wheel_path
from fp4stack.stack.pins import load_project
from fp4stack.testing import envs

ROOT = Path(__file__).resolve().parents[3]
PROJECT = load_project(ROOT)
LINES = PROJECT.lines_of("compressed-tensors")


@pytest.mark.parametrize("line", LINES, ids=[ln.id for ln in LINES])
def test_the_wheel_installs_alone_and_imports(line, tmp_path):
    wheel = patched_wheel_path(PROJECT, line)
    if not wheel.is_file():
        pytest.skip(f"{wheel.name} is not built (`make wheel UPSTREAM={line.id}`)")
    venv = envs.ensure(
        tmp_path / "alone", envs.EnvRecipe(torch=line.env.torch, requires=(str(wheel),))
    )
    done = subprocess.run([envs.python(venv), "-c", "import compressed_tensors"],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr.strip().splitlines()[-1:]
