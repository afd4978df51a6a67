"""Overlays that make a test import pristine or patched upstream code from one venv.

An overlay mirrors the installed top-level entries the stack touches (directories of
symlinks into site-packages, so compiled files still load) and puts the touched files in as
they are at a given git ref. Put first on PYTHONPATH, it shadows the installed package.
A touched ``*.dist-info`` directory is copied whole from the tree at that ref, so
``importlib.metadata`` reads the pristine or patched metadata; a touched sdist ``PKG-INFO``
puts the installed dist-info in, with the dependencies it declares at that ref.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from packaging.utils import canonicalize_name

from fp4stack.build.metadata import SDIST_METADATA, with_dependencies
from fp4stack.core import git


def build(
    repo: Path, ref: str, touched: list[str], package_root: str, site: Path, dest: Path
) -> Path:
    """Write the overlay of ``touched`` files (tree paths) at ``ref`` into ``dest``."""
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    if SDIST_METADATA in touched:
        _dist_info_with_dependencies(repo, ref, site, dest)
    prefix = f"{package_root}/" if package_root else ""
    members = [p.removeprefix(prefix) for p in touched if p.startswith(prefix)]
    for top in sorted({m.split("/", 1)[0] for m in members}):
        if top.endswith(".dist-info"):
            _copy_tree_dir(repo, ref, prefix + top, dest / top)
        elif (site / top).exists():
            _mirror(site / top, dest / top)
    for member in members:
        top = member.split("/", 1)[0]
        if top.endswith(".dist-info") or not (dest / top).exists():
            continue  # copied whole above, or not installed (tests, docs, build files)
        target = dest / member
        target.parent.mkdir(parents=True, exist_ok=True)
        data = git.show_file(repo, ref, prefix + member)
        if target.is_symlink() or target.exists():
            target.unlink()
        if data is not None:
            target.write_bytes(data)
    return dest


def _mirror(source: Path, dest: Path) -> None:
    if source.is_file():
        dest.symlink_to(source)
        return
    for root, dirs, files in os.walk(source):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        relative = Path(root).relative_to(source)
        (dest / relative).mkdir(parents=True, exist_ok=True)
        for name in files:
            (dest / relative / name).symlink_to(Path(root) / name)


def _copy_tree_dir(repo: Path, ref: str, path: str, dest: Path) -> None:
    listing = git.query(repo, "ls-tree", "-r", "--name-only", ref, "--", path).splitlines()
    for name in listing:
        target = dest / Path(name).relative_to(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(git.show_file(repo, ref, name) or b"")


def _dist_info_with_dependencies(repo: Path, ref: str, site: Path, dest: Path) -> None:
    """The installed dist-info of the sdist's distribution, its METADATA declaring the
    dependencies of ``PKG-INFO`` at ``ref`` (as the repacked wheel does)."""
    source = git.show_file(repo, ref, SDIST_METADATA) or b""
    name = _name(source)
    for info in site.glob("*.dist-info"):
        metadata = info / "METADATA"
        if metadata.is_file() and _name(metadata.read_bytes()) == name:
            shutil.copytree(info, dest / info.name)
            (dest / info.name / "METADATA").write_bytes(
                with_dependencies(metadata.read_bytes(), source)
            )
            return


def _name(metadata: bytes) -> str:
    for line in metadata.partition(b"\n\n")[0].splitlines():
        if line.startswith(b"Name:"):
            return canonicalize_name(line[5:].strip().decode())
    return ""
