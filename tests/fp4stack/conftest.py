"""Fixtures shared by the tool tests: the toy upstream's checkout, and the CLI in-process.

The tool tests mirror the packages of src/fp4stack/ (tests/fp4stack/<package>/). Helper
modules sit beside the tests that use them and are imported relatively: pytest runs with
``--import-mode=importlib``, which names each file by its path from the rootdir
(``tests.fp4stack.stack.test_lint``). This file is not above tests/<upstream>/, which run
in venvs without fp4stack.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from fp4stack.cli import main as cli_main
from fp4stack.stack.pins import Project

from .toy_upstream import make_toy

HERE = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)
def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Collect build/ (fp4stack.build's tests), which pytest's default ``norecursedirs``
    skips for its name, unless ``--ignore`` names it; every other path is pytest's call."""
    if collection_path != HERE / "build":
        return None
    return collection_path in {Path(p).resolve() for p in config.getoption("ignore") or []}


@pytest.fixture
def toy(tmp_path: Path) -> Project:
    """A checkout with one toy line, toy@1.0, whose artifacts sit in the cache."""
    return make_toy(tmp_path)


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture) -> Callable:
    """``run_cli(*argv) -> (exit code, stdout, stderr)`` through ``fp4stack.cli.main``."""

    def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = cli_main([*map(str, argv)])
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def pip_env(monkeypatch, tmp_path):
    """pip configured by the test alone: no config files, no PIP_* or proxy variables."""
    for name in list(os.environ):
        if name.startswith("PIP_") or name.lower() in {"http_proxy", "https_proxy", "all_proxy"}:
            monkeypatch.delenv(name)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    return monkeypatch
