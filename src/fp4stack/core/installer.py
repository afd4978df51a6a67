"""Install packages into a venv with uv's pip interface, from the sources pip is configured with.

pip unpacks and byte-compiles torch anew for every venv (about 4 minutes a test env here);
uv links the files from its cache (about 20 s cold, 5 s warm: docs/benchmarks.md). uv does
not read pip's configuration, so the settings that decide what pip would install are handed
to it through its own variables (which keeps credentials off the command line and out of
logs): index-url, extra-index-url, no-index, find-links, constraint, trusted-host, cert,
client-cert, proxy, timeout and retries. ``unsafe-best-match`` makes uv pick the best
version across all indexes, as pip does, instead of the first index that lists a name.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fp4stack.core.pipconfig import PipSettings
from fp4stack.core.runner import Argv, Result, run


def uv_binary() -> str:
    """The uv executable that came with fp4stack (the ``uv`` distribution)."""
    from uv import find_uv_bin

    return str(find_uv_bin())


def uv_environment(settings: PipSettings) -> dict[str, str]:
    """uv's variables for the sources and limits ``settings`` (pip's) describe."""
    env = {
        "UV_NO_CONFIG": "1",  # pip's configuration decides, not a stray uv.toml
        "UV_INDEX_STRATEGY": "unsafe-best-match",
        "UV_NO_PROGRESS": "1",
        "UV_HTTP_TIMEOUT": str(int(settings.timeout)),
        "UV_HTTP_RETRIES": str(settings.retries),
    }
    if not settings.no_index:
        env["UV_INDEX_URL"] = settings.index_url
        if settings.extra_index_urls:
            env["UV_EXTRA_INDEX_URL"] = " ".join(settings.extra_index_urls)
    if settings.find_links:
        env["UV_FIND_LINKS"] = ",".join(settings.find_links)
    if settings.constraints:
        env["UV_CONSTRAINT"] = " ".join(settings.constraints)
    if settings.trusted_hosts:
        env["UV_INSECURE_HOST"] = " ".join(settings.trusted_hosts)
    if settings.cert:
        env["SSL_CERT_FILE"] = settings.cert
    if settings.client_cert:
        env["SSL_CLIENT_CERT"] = settings.client_cert
    if settings.proxy and not any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy")):
        env["HTTPS_PROXY"] = env["HTTP_PROXY"] = settings.proxy
    if settings.keyring_provider in ("subprocess", "import"):
        env["UV_KEYRING_PROVIDER"] = "subprocess"
    return env


@dataclass(frozen=True)
class Installer:
    """``uv pip`` bound to one venv's interpreter and to pip's sources."""

    python: Path
    settings: PipSettings
    # a requirements file whose pins replace what packages require (uv's --override)
    overrides: Path | None = None

    def install(
        self, *requirements: str | os.PathLike[str], no_deps: bool = False, reinstall: bool = False
    ) -> Result:
        """Install ``requirements`` (names with pins, wheel paths, ``-e``/``-r`` pairs)."""
        flags = [*(["--no-deps"] if no_deps else []), *(["--reinstall"] if reinstall else [])]
        if self.overrides is not None and not no_deps:
            flags += ["--override", str(self.overrides)]
        return self._uv(["install", *flags, *requirements])

    def uninstall(self, names: Sequence[str]) -> Result:
        """Remove ``names``; one that is not installed is no error."""
        return self._uv(["uninstall", *names])

    def _uv(self, args: Argv) -> Result:
        argv = [uv_binary(), "pip", *args, "--quiet", "--python", self.python]
        if self.settings.no_index:
            argv.append("--no-index")
        return run(argv, env=uv_environment(self.settings))
