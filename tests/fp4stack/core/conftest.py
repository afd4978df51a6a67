"""Fixtures of the download and installer tests: pip configured by the test alone."""

from __future__ import annotations

import os

import pytest


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
