"""Fetch one pinned artifact into a cache, refusing anything whose sha256 differs.

``pip download`` cannot be used for sdists: it builds their metadata, and vLLM's build needs
CUDA torch and cmake. So ``finder`` looks the file up by its exact name in the sources pip is
configured with, and ``transport`` downloads it to ``<file>.part``; only once its sha256 is
the pinned one is it renamed into the cache. Both (unearth, httpx2) are imported on a cache
miss only.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

from fp4stack.core.errors import SourceError
from fp4stack.core.fs import sha256_of
from fp4stack.core.log import log


class PinnedFile(Protocol):
    """What a download needs: one exact file's name, and the sha256 it must have."""

    @property
    def filename(self) -> str: ...

    @property
    def sha256(self) -> str: ...


def verified(path: Path, artifact: PinnedFile) -> Path:
    """Return ``path`` if its sha256 is the pinned one; refuse it otherwise."""
    actual = sha256_of(path)
    if actual != artifact.sha256:
        raise SourceError(
            f"{path}: sha256 {actual} does not match the pin {artifact.sha256}; refusing to use it",
            hint=f"delete {path} to download it again, or correct upstream/pins.toml",
        )
    return path


def fetch(distribution: str, artifact: PinnedFile, cache: Path) -> Path:
    """The verified cached copy of ``artifact``, downloading it first if needed."""
    target = cache / artifact.filename
    if not target.exists():
        from fp4stack.core import finder, transport
        from fp4stack.core.pipconfig import pip_settings

        cache.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        with transport.session(pip_settings()) as client:
            url = finder.locate(client, distribution, artifact.filename, artifact.sha256)
            log(f"downloading {artifact.filename} from {url}")
            try:
                transport.download(client, url, partial)
                _check_download(partial, artifact, url)
                os.replace(partial, target)
            finally:
                partial.unlink(missing_ok=True)
    return verified(target, artifact)


def _check_download(path: Path, artifact: PinnedFile, url: str) -> None:
    actual = sha256_of(path)
    if actual != artifact.sha256:
        raise SourceError(
            f"{url} served {artifact.filename} with sha256 {actual}, "
            f"not the pinned {artifact.sha256}; refusing to use it",
            hint="the index serves another file under the pinned name: check the mirror, "
            "or correct upstream/pins.toml",
        )
