"""Fetch one pinned PyPI artifact into a cache, refusing anything whose sha256 differs.

``pip download`` cannot be used for sdists: it builds their metadata, and vLLM's build needs
CUDA torch and cmake. So the file is located through the same package index pip is
configured with (``PIP_INDEX_URL`` or pip's ``global.index-url``; PEP 691 JSON), with pip's
certificate bundle, and checked against the pin before it is ever used.
"""

from __future__ import annotations

import json
import os
import ssl
import sys
import urllib.request
from pathlib import Path
from typing import Protocol

from fp4stack.core.errors import SourceError
from fp4stack.core.fs import sha256_of
from fp4stack.core.log import log
from fp4stack.core.runner import run

DEFAULT_INDEX = "https://pypi.org/simple"
_CHUNK = 1 << 20


class Artifact(Protocol):
    """One exact file on the index: its name and the sha256 it must have."""

    @property
    def filename(self) -> str: ...

    @property
    def sha256(self) -> str: ...


def verified(path: Path, artifact: Artifact) -> Path:
    """Return ``path`` if its sha256 is the pinned one; refuse it otherwise."""
    actual = sha256_of(path)
    if actual != artifact.sha256:
        raise SourceError(
            f"{path}: sha256 {actual} does not match the pin {artifact.sha256}; refusing to use it",
            hint=f"delete {path} to download it again, or correct upstream/pins.toml",
        )
    return path


def fetch(distribution: str, artifact: Artifact, cache: Path) -> Path:
    """The verified cached copy of ``artifact``, downloading it first if needed."""
    target = cache / artifact.filename
    if not target.exists():
        cache.mkdir(parents=True, exist_ok=True)
        url = _locate(distribution, artifact.filename)
        log(f"downloading {artifact.filename}")
        partial = target.with_name(target.name + ".part")
        try:
            _download(url, partial)
            verified(partial, artifact)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
    return verified(target, artifact)


def index_url() -> str:
    """The package index pip is configured to use."""
    if url := os.environ.get("PIP_INDEX_URL"):
        return url.rstrip("/")
    result = run([sys.executable, "-m", "pip", "config", "get", "global.index-url"], check=False)
    return (result.stdout.strip() if result.returncode == 0 else "") or DEFAULT_INDEX


def _locate(distribution: str, filename: str) -> str:
    page = f"{index_url()}/{distribution}/"
    request = urllib.request.Request(
        page, headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    try:
        with urllib.request.urlopen(request, context=_ssl_context(), timeout=60) as response:
            files = json.load(response)["files"]
    except (OSError, ValueError, KeyError) as error:
        raise SourceError(f"cannot list {page}: {error}") from None
    for entry in files:
        if entry["filename"] == filename:
            return str(entry["url"])
    raise SourceError(f"{filename} is not on {page}", hint="check the pin in upstream/pins.toml")


def _download(url: str, destination: Path) -> None:
    try:
        with (
            urllib.request.urlopen(url, context=_ssl_context(), timeout=120) as response,
            destination.open("wb") as handle,
        ):
            while chunk := response.read(_CHUNK):
                handle.write(chunk)
    except OSError as error:
        raise SourceError(f"download of {url} failed: {error}") from None


def _ssl_context() -> ssl.SSLContext:
    cert = os.environ.get("PIP_CERT") or os.environ.get("SSL_CERT_FILE")
    return ssl.create_default_context(cafile=cert if cert and Path(cert).is_file() else None)
