"""Test venvs are filled by uv from the sources pip is configured with, and only those."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fp4stack.core import log as log_module
from fp4stack.core.errors import CommandError
from fp4stack.core.installer import Installer, uv_environment
from fp4stack.core.pipconfig import parse_config_list, pip_settings

from ..toy_upstream import write_wheel
from .loopback_index import TOKEN, Index


@pytest.fixture
def venv(tmp_path: Path) -> Path:
    """An empty venv (no pip: uv needs none)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", tmp_path / "venv"], check=True)
    return tmp_path / "venv"


@pytest.fixture
def index(tmp_path: Path):
    wheel = tmp_path / "toy-1.0-py3-none-any.whl"
    write_wheel(wheel, "1.0", {"src/toy/__init__.py": "ANSWER = 42\n"})
    served = Index({wheel.name: wheel.read_bytes()})
    yield served
    served.close()


def _imports_toy(venv: Path) -> bool:
    probe = [venv / "bin" / "python", "-c", "import toy; assert toy.ANSWER == 42"]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


def test_uv_installs_from_the_private_index_pip_names_without_showing_its_token(
    pip_env, index, venv, tmp_path
):
    pip_env.setenv("PIP_INDEX_URL", index.url())
    logged: list[str] = []
    log_module.set_sink(lambda message, _kind: logged.append(message))
    try:
        Installer(venv / "bin" / "python", pip_settings("install")).install("toy==1.0")
    finally:
        log_module.set_sink(None)
    assert _imports_toy(venv)
    assert all(auth == f"Basic {index.auth}" for _, auth in index.requests)
    assert logged and not any(TOKEN in line for line in logged)


def test_uv_refuses_what_pip_is_not_configured_to_see(pip_env, index, venv):
    """With no-index and no find-links, the same install must fail: uv reads pip's sources."""
    pip_env.setenv("PIP_INDEX_URL", index.url())
    pip_env.setenv("PIP_NO_INDEX", "1")
    with pytest.raises(CommandError):
        Installer(venv / "bin" / "python", pip_settings("install")).install("toy==1.0")
    assert not index.requests and not _imports_toy(venv)


def test_pips_install_section_and_constraints_reach_uv():
    listing = "\n".join(
        [
            "global.index-url='https://mirror.example/simple'",
            "download.index-url='https://download-only.example/simple'",
            "install.extra-index-url='https://a.example/simple https://b.example/simple'",
            "global.constraint='/etc/cap.txt'",
            "global.find-links='/opt/wheels'",
            "global.trusted-host='a.example'",
            ":env:.cert='/etc/ca.pem'",
        ]
    )
    env = uv_environment(parse_config_list(listing, "install"))
    assert env["UV_INDEX_URL"] == "https://mirror.example/simple"
    assert env["UV_EXTRA_INDEX_URL"] == "https://a.example/simple https://b.example/simple"
    assert env["UV_CONSTRAINT"] == "/etc/cap.txt"
    assert env["UV_FIND_LINKS"] == "/opt/wheels"
    assert env["UV_INSECURE_HOST"] == "a.example"
    assert env["SSL_CERT_FILE"] == "/etc/ca.pem"
    assert env["UV_INDEX_STRATEGY"] == "unsafe-best-match"
    download = parse_config_list(listing, "download")
    assert download.index_url == "https://download-only.example/simple"
    assert not download.extra_index_urls
