"""A toy upstream, made locally: an sdist and a wheel pinned by sha256, already in the cache."""

from __future__ import annotations

import base64
import hashlib
import io
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest

from fp4stack.core import git
from fp4stack.stack.pins import Project, load_project

CORE = "def scale(x):\n    return x * 2\n"
INIT = "from toy.core import scale\n"
WHEEL_FILES = {
    "toy/__init__.py": INIT,
    "toy/core.py": CORE,
    "toy/_native.so": "\x7fELF pretend this is compiled\n" * 50,
    "toy-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: toy\nVersion: 1.0\n",
    "toy-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nTag: py3-none-any\n",
}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_sdist(path: Path) -> None:
    files = {
        "toy-1.0/src/toy/__init__.py": INIT,
        "toy-1.0/src/toy/core.py": CORE,
        "toy-1.0/tests/test_core.py": "from toy import scale\n\ndef test_scale():\n"
        "    assert scale(2) == 4\n",
        "toy-1.0/pyproject.toml": "[project]\nname='toy'\n",
    }
    with tarfile.open(path, "w:gz") as archive:
        for name, text in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(text.encode())
            archive.addfile(info, io.BytesIO(text.encode()))


def _write_wheel(path: Path) -> None:
    record = []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as wheel:
        for name, text in WHEEL_FILES.items():
            data = text.encode()
            wheel.writestr(name, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{name},sha256={digest},{len(data)}")
        wheel.writestr(
            "toy-1.0.dist-info/RECORD", "\n".join(record) + "\ntoy-1.0.dist-info/RECORD,,\n"
        )


PINS = """\
[toy]
git = "https://example.invalid/toy"
tag = "1.0"
commit = "0000000000000000000000000000000000000000"
submodule = "upstream/toy"
distribution = "toy"
version = "1.0"
source = "sdist"
package_root = "src"
[toy.sdist]
filename = "toy-1.0.tar.gz"
sha256 = "{sdist}"
[toy.wheel]
filename = "toy-1.0-py3-none-any.whl"
sha256 = "{wheel}"
[toy.env]
torch = "2.13.0"
"""


@pytest.fixture
def toy(tmp_path: Path) -> Project:
    """A checkout with one pinned toy upstream whose artifacts sit in the cache."""
    cache = tmp_path / "build" / "cache"
    cache.mkdir(parents=True)
    _write_sdist(cache / "toy-1.0.tar.gz")
    _write_wheel(cache / "toy-1.0-py3-none-any.whl")
    (tmp_path / "upstream").mkdir()
    (tmp_path / "upstream" / "pins.toml").write_text(
        PINS.format(
            sdist=_sha(cache / "toy-1.0.tar.gz"), wheel=_sha(cache / "toy-1.0-py3-none-any.whl")
        )
    )
    (tmp_path / "patches" / "toy").mkdir(parents=True)
    (tmp_path / "patches" / "toy" / "series").write_text("# toy stack\n")
    (tmp_path / "tests" / "toy").mkdir(parents=True)
    (tmp_path / "tests" / "toy" / "test_scale.py").write_text("def test_triples():\n    pass\n")
    return load_project(tmp_path)


MESSAGE = """Triple instead of double

The toy doubles where its users need it to triple; every caller works around it
by multiplying again, which this patch makes unnecessary.

Upstream-Status: Pending [toy upstream has no tracker]
Bug: https://example.invalid/toy/issues/1
Test: tests/toy/test_scale.py::test_triples
"""


def commit_edit(repo: Path, path: str, text: str, message: str = MESSAGE) -> None:
    """Edit one file in the applied tree and commit it as a maintainer would."""
    (repo / path).write_text(text)
    git.git(repo, "add", path)
    subprocess.run(
        [
            "git",
            "-C",
            str(repo),
            "-c",
            "user.name=Maint",
            "-c",
            "user.email=m@example.invalid",
            "commit",
            "-q",
            "-m",
            message,
        ],
        check=True,
        env={"GIT_AUTHOR_DATE": "2026-01-02T03:04:05Z", "PATH": "/usr/bin:/bin"},
    )
