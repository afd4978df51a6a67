"""Shared fixtures: run the real ``fp4stack`` CLI in-process."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from fp4stack import cli

CAST_MODULE = "fp4stack.cast.cli"
# pytest runs with --import-mode=importlib: make the helper modules beside this file importable
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def run_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> Callable:
    """``run_cli(*argv) -> (exit code, stdout, stderr)`` through ``fp4stack.cli.main``."""
    # until the top-level CLI lists the verb, register it the way it would
    modules = getattr(cli, "VERB_MODULES", None)
    if modules is not None and CAST_MODULE not in modules:
        monkeypatch.setattr(cli, "VERB_MODULES", (*modules, CAST_MODULE))
    verbs = getattr(cli, "VERBS", None)
    if isinstance(verbs, dict) and CAST_MODULE not in verbs.values():
        monkeypatch.setitem(verbs, "cast", CAST_MODULE)

    def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = cli.main(["cast", "mxfp4-to-nvfp4", *map(str, argv)])
        out, err = capsys.readouterr()
        return code, out, err

    return run
