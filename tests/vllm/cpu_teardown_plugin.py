"""Pytest plugin for running vLLM's own test suite on a machine without an accelerator.

vLLM's ``tests/conftest.py`` tears every test down with an autouse
``cleanup_dist_env_and_memory()``. On a CPU-only machine with vLLM's CUDA wheel the
platform is ``UnspecifiedPlatform`` (not ``is_cpu()``), so that teardown ends with
``torch.accelerator.empty_cache()``, which raises "Cannot access accelerator device
when none is available" and turns every test into a teardown ERROR.

This plugin turns only those accelerator cache flushes into no-ops, and only when
torch sees no accelerator: there is no device cache to flush. The rest of the
teardown (destroying the process groups, resetting the env cache, gc) still runs,
and every conftest fixture stays available. Load it with
``PYTHONPATH=<repo>/tests/vllm python -m pytest -p cpu_teardown_plugin ...``.
"""

from __future__ import annotations

import pytest
import torch

_FLUSHES = ("empty_cache", "empty_host_cache")


def _no_accelerator_flush() -> None:
    """Stands in for a torch.accelerator cache flush when there is no accelerator."""


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    if torch.accelerator.current_accelerator() is not None:
        return
    for name in _FLUSHES:
        if hasattr(torch.accelerator, name):
            setattr(torch.accelerator, name, _no_accelerator_flush)
