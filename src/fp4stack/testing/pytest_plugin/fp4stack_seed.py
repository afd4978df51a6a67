"""Reseed every random generator before each test, so a suite's verdict is reproducible.

Upstream suites draw test data from unseeded generators, and a few of their assertions
hold only for most draws (compressed-tensors 0.13.0's ``test_lifecyle`` fails for about
one seed in seven, on the pristine release as well). A red CI must mean a regression,
not a bad draw. Each test gets a seed of its own, derived from its node id, so adding or
deselecting tests never changes another test's data. ``FP4STACK_TEST_SEED`` shifts every
seed, to look for draws that break a test.

This module is loaded with ``-p fp4stack_seed`` from this directory on ``PYTHONPATH``:
it must import nothing from fp4stack, because the upstream test venvs do not have it.
"""

from __future__ import annotations

import os
import random
import sys
import zlib

import pytest

SEED_ENV = "FP4STACK_TEST_SEED"
_BASE = pytest.StashKey[int]()


def _base_seed() -> int:
    value = os.environ.get(SEED_ENV, "0")
    try:
        return int(value)
    except ValueError:
        raise pytest.UsageError(f"{SEED_ENV}={value!r} is not an integer") from None


def seed_for(nodeid: str, base: int) -> int:
    """The seed for one test: stable across runs, orderings and selections."""
    return (zlib.crc32(nodeid.encode()) + base) % 2**32


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_BASE] = _base_seed()


def pytest_report_header(config: pytest.Config) -> str:
    return f"fp4stack: random, numpy and torch reseeded per test ({SEED_ENV}={config.stash[_BASE]})"


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    seed = seed_for(item.nodeid, item.config.stash[_BASE])
    random.seed(seed)
    # Seed only what the test process has imported: importing torch here would cost
    # seconds in suites that never use it.
    if (numpy := sys.modules.get("numpy")) is not None:
        numpy.random.seed(seed)
    if (torch := sys.modules.get("torch")) is not None:
        torch.manual_seed(seed)
