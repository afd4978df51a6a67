"""Materialize an upstream's pristine tree as a git repository with an ``upstream`` branch.

The tree comes from the initialized git submodule when there is one at the pinned commit
(and the upstream is patched as source), otherwise from the pinned PyPI artifact.
"""

from __future__ import annotations

import hashlib
import shutil
import tarfile
import zipfile
from pathlib import Path

from fp4stack.core import git
from fp4stack.core.download import fetch
from fp4stack.core.errors import SourceError, stage
from fp4stack.core.log import log
from fp4stack.stack.pins import Line, Project

PRISTINE_DATE = "2000-01-01T00:00:00Z"
UPSTREAM_BRANCH = "upstream"
PATCHED_BRANCH = "patched"


def submodule_checkout(project: Project, line: Line) -> Path | None:
    """The upstream's submodule if it is initialized and holds the line's tag commit.

    One gitlink per upstream, at its newest line; older lines' commits are in pins.toml and
    are read from the same clone (``git archive <commit>``) when it has them.
    """
    path = project.root / line.submodule
    if not (path / ".git").exists() or not line.commit:
        return None
    found = git.git(path, "cat-file", "-e", f"{line.commit}^{{commit}}", check=False)
    if not found.ok:
        log(f"{line.submodule} does not have {line.id}'s commit {line.commit[:12]} "
            "(fetch its tag there to use it); using the PyPI artifact", "warn")  # fmt: skip
        return None
    return path


def submodule_tree(project: Project, line: Line) -> Path | None:
    """A work tree of the submodule at the line's commit: the checkout when it is there,
    else an export under build/upstream-tests/<id>.tree (kept while the commit is the same)."""
    checkout = submodule_checkout(project, line)
    if checkout is None or git.query(checkout, "rev-parse", "HEAD") == line.commit:
        return checkout
    tree = project.build / "upstream-tests" / f"{line.id}.tree"
    stamp = tree / ".fp4stack-commit"
    if not (stamp.is_file() and stamp.read_text() == line.commit):
        shutil.rmtree(tree, ignore_errors=True)
        tree.mkdir(parents=True)
        with stage(SourceError, f"{line.id}: cannot export {line.submodule} @ {line.commit}"):
            archive = git.git(checkout, "archive", "--format=tar", line.commit, binary=True).data
            _extract_tar_bytes(archive, tree)
        stamp.write_text(line.commit)
    return tree


def source_identity(project: Project, line: Line) -> str:
    """A string that changes whenever the pristine tree would."""
    if line.source == "sdist" and submodule_checkout(project, line):
        return f"git:{line.commit}"
    return f"{line.source}:{line.source_artifact.sha256}"


def import_pristine(project: Project, line: Line, destination: Path) -> None:
    """Create ``destination`` as a fresh repo whose one commit is the pristine tree.

    The first import also stores that commit in a bare repository under build/cache/pristine/,
    keyed by the source's identity; later imports clone it instead of unpacking again.
    """
    identity = hashlib.sha256(source_identity(project, line).encode()).hexdigest()[:16]
    cached = project.cache / "pristine" / f"{line.id}-{identity}.git"
    staging = destination.with_name(f".{destination.name}.staging")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        with stage(
            SourceError,
            f"{line.id}: cannot prepare the pristine tree",
            hint=f"check that {line.submodule} (if initialized) is a complete checkout "
            f"and that {project.build} is writable",
        ):
            if cached.is_dir():
                git.git(project.root, "clone", "-q", "--no-checkout", str(cached), str(staging))
                git.git(staging, "remote", "remove", "origin")
            else:
                origin = _unpack(project, line, staging)
                git.init(staging)
                message = f"{line.distribution} {line.version} pristine\n\nFrom: {origin}\n"
                git.commit_all(staging, message, PRISTINE_DATE)
                _store(staging, cached)
            git.git(staging, "branch", "-f", UPSTREAM_BRANCH, git.rev_parse(staging, "HEAD"))
            shutil.rmtree(destination, ignore_errors=True)
            staging.rename(destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _store(repo: Path, cached: Path) -> None:
    partial = cached.with_name(f".{cached.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    cached.parent.mkdir(parents=True, exist_ok=True)
    git.git(repo, "clone", "-q", "--bare", str(repo), str(partial))
    partial.rename(cached)


def _unpack(project: Project, line: Line, staging: Path) -> str:
    checkout = submodule_checkout(project, line) if line.source == "sdist" else None
    staging.mkdir(parents=True)
    if checkout:
        log(f"{line.id}: pristine tree from {line.submodule} @ {line.commit[:12]}")
        archive = git.git(checkout, "archive", "--format=tar", line.commit, binary=True).data
        _extract_tar_bytes(archive, staging)
        return f"{line.git} {line.commit}"
    artifact = line.source_artifact
    path = fetch(line.distribution, artifact, project.cache)
    log(f"{line.id}: pristine tree from {artifact.filename}")
    try:
        if artifact.filename.endswith(".whl"):
            with zipfile.ZipFile(path) as wheel:
                wheel.extractall(staging)
        else:
            with tarfile.open(path) as sdist:
                sdist.extractall(staging, filter="data")
            _hoist_single_dir(staging)
    except (tarfile.TarError, zipfile.BadZipFile, OSError) as error:
        raise SourceError(f"{path}: cannot unpack: {error}") from error
    return f"{artifact.filename} sha256:{artifact.sha256}"


def _extract_tar_bytes(data: bytes, destination: Path) -> None:
    import io

    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        archive.extractall(destination, filter="data")


def _hoist_single_dir(staging: Path) -> None:
    """An sdist holds one ``name-version/`` directory: make its contents the tree root."""
    entries = list(staging.iterdir())
    if len(entries) != 1 or not entries[0].is_dir():
        return
    inner = entries[0]
    for child in inner.iterdir():
        child.rename(staging / child.name)
    inner.rmdir()
