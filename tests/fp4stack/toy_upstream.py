"""A toy upstream, made locally: an sdist and a wheel pinned by sha256, already in the cache.

The ``toy`` fixture (tests/fp4stack/conftest.py) is ``make_toy``'s checkout; the tests edit
it with the helpers here, imported relatively (``from ..toy_upstream import toy_line``).
"""

from __future__ import annotations

import base64
import hashlib
import io
import subprocess
import tarfile
import zipfile
from pathlib import Path

from fp4stack.core import git
from fp4stack.stack.pins import Line, Project, load_project

CORE = "def scale(x):\n    return x * 2\n"
INIT = "from toy.core import scale\n"
TEST_CORE = "from toy import scale\n\ndef test_scale():\n    assert scale(2) == 4\n"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_sdist(path: Path, version: str, files: dict[str, str]) -> None:
    with tarfile.open(path, "w:gz") as archive:
        for name, text in {**files, "pyproject.toml": "[project]\nname='toy'\n"}.items():
            info = tarfile.TarInfo(f"toy-{version}/{name}")
            info.size = len(text.encode())
            archive.addfile(info, io.BytesIO(text.encode()))


def write_wheel(path: Path, version: str, files: dict[str, str]) -> None:
    info = f"toy-{version}.dist-info"
    members = {
        **{name.removeprefix("src/"): text for name, text in files.items()
           if name.startswith("src/")},
        "toy/_native.so": "\x7fELF pretend this is compiled\n" * 50,
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: toy\nVersion: {version}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nTag: py3-none-any\n",
    }  # fmt: skip
    record = []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as wheel:
        for name, text in members.items():
            data = text.encode()
            wheel.writestr(name, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{name},sha256={digest},{len(data)}")
        wheel.writestr(f"{info}/RECORD", "\n".join(record) + f"\n{info}/RECORD,,\n")


def release_files(core: str = CORE, **extra: str) -> dict[str, str]:
    """The toy's source tree at one release: ``core`` is src/toy/core.py."""
    return {"src/toy/__init__.py": INIT, "src/toy/core.py": core,
            "tests/test_core.py": TEST_CORE, **extra}  # fmt: skip


def make_release(where: Path, version: str, files: dict[str, str] | None = None) -> dict[str, str]:
    """Write toy-<version>.tar.gz and its py3-none-any wheel into ``where``: name -> sha256."""
    where.mkdir(parents=True, exist_ok=True)
    files = files or release_files()
    sdist, wheel = where / f"toy-{version}.tar.gz", where / f"toy-{version}-py3-none-any.whl"
    _write_sdist(sdist, version, files)
    write_wheel(wheel, version, files)
    return {sdist.name: _sha(sdist), wheel.name: _sha(wheel)}


SHARED = """\
[toy]
git = "https://example.invalid/toy"
submodule = "upstream/toy"
distribution = "toy"
source = "sdist"
package_root = "src"
"""

LINE = """
[toy.lines."{version}"]
tag = "v{version}"
commit = "0000000000000000000000000000000000000000"
[toy.lines."{version}".sdist]
filename = "toy-{version}.tar.gz"
sha256 = "{sdist}"
[toy.lines."{version}".wheel]
filename = "toy-{version}-py3-none-any.whl"
sha256 = "{wheel}"
[toy.lines."{version}".env]
torch = "2.13.0"
"""


def line_table(version: str, hashes: dict[str, str]) -> str:
    """The pins.toml table of the toy line at ``version``."""
    return LINE.format(version=version, sdist=hashes[f"toy-{version}.tar.gz"],
                       wheel=hashes[f"toy-{version}-py3-none-any.whl"])  # fmt: skip


def make_toy(root: Path) -> Project:
    """A checkout in ``root`` with one toy line, toy@1.0, whose artifacts sit in the cache."""
    cache = root / "build" / "cache"
    hashes = make_release(cache, "1.0")
    (root / "upstream").mkdir()
    (root / "upstream" / "pins.toml").write_text(SHARED + line_table("1.0", hashes))
    (root / "patches" / "toy" / "1.0").mkdir(parents=True)
    (root / "patches" / "toy" / "1.0" / "series").write_text("# toy stack\n")
    (root / "tests" / "toy").mkdir(parents=True)
    (root / "tests" / "toy" / "test_scale.py").write_text("def test_triples():\n    pass\n")
    return load_project(root)


def toy_line(project: Project) -> Line:
    """The toy fixture's one line."""
    return project.lines["toy@1.0"]


MESSAGE = """Triple instead of double

The toy doubles where its users need it to triple; every caller works around it
by multiplying again, which this patch makes unnecessary.

Upstream-Status: Pending [toy upstream has no tracker]
Bug: https://example.invalid/toy/issues/1
Test: tests/toy/test_scale.py::test_triples
Affects: none [the toy reads no checkpoint]
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


def add_line(project: Project, version: str, files: dict[str, str] | None = None) -> Project:
    """Pin a second toy release as a line of its own (artifacts in the cache, empty series)."""
    hashes = make_release(project.cache, version, files)
    pins = project.root / "upstream" / "pins.toml"
    pins.write_text(pins.read_text() + line_table(version, hashes))
    (project.root / "patches" / "toy" / version).mkdir(parents=True, exist_ok=True)
    (project.root / "patches" / "toy" / version / "series").write_text("# toy stack\n")
    return load_project(project.root)
