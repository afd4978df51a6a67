"""Shared fixtures of the cast tests: the real ``fp4stack cast`` CLI in-process."""

from __future__ import annotations

from collections.abc import Callable

import pytest


@pytest.fixture
def run_cli(run_cli: Callable) -> Callable:
    """``run_cli(*argv) -> (exit code, stdout, stderr)`` of ``fp4stack cast mxfp4-to-nvfp4
    *argv``, through tests/fp4stack/conftest.py's ``run_cli``."""
    return lambda *argv: run_cli("cast", "mxfp4-to-nvfp4", *argv)
