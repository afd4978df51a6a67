"""What an interpreter has installed: run a small script in it, read back JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from fp4stack.core.errors import CommandError, UsageError
from fp4stack.core.runner import run

TORCH = "torch"

# Runs in the target interpreter (any Python 3.8+): nothing but the standard library.
_SCRIPT = r"""
import json, sys
from importlib import metadata
out = {"python": sys.version.split()[0], "executable": sys.executable, "packages": {}}
for name in sys.argv[1:]:
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        continue
    files = dist.files or []
    tops = sorted({str(f).split("/")[0] for f in files})
    info = getattr(dist, "_path", None)
    out["packages"][name] = {
        "version": dist.version,
        "site": str(dist.locate_file("")),
        "dist_info": str(info) if info else "",
        "top_level": tops,
    }
print(json.dumps(out))
"""


@dataclass(frozen=True)
class Installed:
    """One installed distribution."""

    name: str
    version: str
    site: Path  # the directory its files are relative to
    dist_info: Path
    top_level: tuple[str, ...]  # first path components of its RECORD

    @property
    def public(self) -> str:
        return self.version.split("+")[0]

    @property
    def local(self) -> str:
        return self.version.split("+", 1)[1] if "+" in self.version else ""


@dataclass(frozen=True)
class Environment:
    python: Path
    python_version: str
    executable: str
    packages: dict[str, Installed]


def probe(python: Path, names: list[str]) -> Environment:
    """The distributions ``names`` as installed for ``python``.

    :raises UsageError: ``python`` is missing or does not run.
    """
    hint = "pass --python a python executable, e.g. .venv/bin/python"
    try:
        result = run([python, "-c", _SCRIPT, *names], check=False, binary=True)
    except CommandError as error:
        raise UsageError(f"{python}: cannot run it: {error.output}", hint=hint) from error
    if result.returncode != 0:
        tail = result.stdout.strip().splitlines()[-1:] or ["no output"]
        raise UsageError(f"{python}: cannot run it as a Python interpreter ({tail[0]})", hint=hint)
    data = json.loads(result.data)
    packages = {
        name: Installed(
            name, p["version"], Path(p["site"]), Path(p["dist_info"]), tuple(p["top_level"])
        )
        for name, p in data["packages"].items()
    }
    return Environment(python, data["python"], data["executable"], packages)
