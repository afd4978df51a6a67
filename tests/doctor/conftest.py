"""Shared fixtures of the doctor tests: the CLI in-process, and the helper modules."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from fp4stack.cli import main as cli_main

# pytest runs with --import-mode=importlib: make the helper modules beside this file importable
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture) -> Callable:
    """``run_cli(*argv) -> (exit code, stdout, stderr)`` through ``fp4stack.cli.main``."""

    def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = cli_main([*map(str, argv)])
        out, err = capsys.readouterr()
        return code, out, err

    return run
