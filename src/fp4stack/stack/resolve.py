"""Pins for another release of a line's upstream, resolved from the configured index.

The files come from the sources pip is configured with (``core.finder``, the same lookup
``core.download`` uses), never from a hard-coded host: the sdist and the wheel with the
line's own tags, each with the sha256 the index advertises. A source that advertises none
(a find-links directory) has the file downloaded into the cache and hashed. The download
is then verified against that sha256 like any other pin, so an index that serves another
file than it lists is refused.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import Version

from fp4stack.core import git
from fp4stack.core.download import fetch
from fp4stack.core.errors import UsageError
from fp4stack.core.fs import sha256_of
from fp4stack.core.log import log
from fp4stack.stack.pins import Artifact, Line, Project

if TYPE_CHECKING:
    from fp4stack.core.finder import Listed
    from fp4stack.core.transport import Client


def check_target(project: Project, line: Line, version: str, *, newer: bool = True) -> None:
    """Refuse a target release that is not a version, is the line's own, or (``newer``) is
    older than it."""
    try:
        target = Version(version)
    except ValueError:
        raise UsageError(f"{version!r} is not a release version") from None
    if target == Version(line.version):
        raise UsageError(f"{line.id} is already at {version}")
    if newer and target < Version(line.version):
        raise UsageError(
            f"refusing to rebase {line.id} onto {version}: it is older than the line",
            hint=f"rebase the newest line that predates {version}, or create it by hand",
        )


def resolve(project: Project, line: Line, version: str) -> Line:
    """``line`` moved to ``version``: tag, commit (from the submodule when it has the tag),
    and the sdist and wheel with their sha256, all verified into the cache."""
    from fp4stack.core import finder, transport
    from fp4stack.core.pipconfig import pip_settings

    with transport.session(pip_settings()) as client:
        files = finder.list_files(client, line.distribution)
        wanted = _pick(line, version, files)
        artifacts = {
            kind: _artifact(client, listed, project.cache) for kind, listed in wanted.items()
        }
    tag = line.tag.replace(line.version, version) if line.version in line.tag else version
    target = dataclasses.replace(
        line,
        version=version,
        tag=tag,
        commit=_tag_commit(project, line, tag),
        wheel=artifacts["wheel"],
        sdist=artifacts.get("sdist"),
    )
    for artifact in (target.wheel, target.sdist):
        if artifact:
            fetch(line.distribution, artifact, project.cache)  # verified against the pin
    return target


def newest_release(line: Line) -> str | None:
    """The newest final release of ``line``'s distribution on the index pip is configured
    with that has the files a line needs (the wheel with the line's tags, and the sdist when
    the line's tree comes from one); pre-releases, dev releases and yanked files skipped."""
    from fp4stack.core import finder, transport
    from fp4stack.core.pipconfig import pip_settings

    with transport.session(pip_settings()) as client:
        files = [f for f in finder.list_files(client, line.distribution) if not f.yanked]
    complete = [
        release
        for release, kinds in _releases(line, files).items()
        if not release.is_prerelease and all(k in kinds for k in _needed(line))
    ]
    return str(max(complete)) if complete else None


def _needed(line: Line) -> tuple[str, ...]:
    return ("wheel", "sdist") if line.source == "sdist" else ("wheel",)


def _releases(line: Line, files: list[Listed]) -> dict[Version, dict[str, Listed]]:
    """The listed files of ``line``'s distribution by release: kind (wheel, sdist) -> file."""
    name = canonicalize_name(line.distribution)
    tags = line.wheel.filename.removesuffix(".whl").split("-", 2)[2]
    releases: dict[Version, dict[str, Listed]] = {}
    for listed in files:
        parsed = _parse(listed.filename)
        if parsed and parsed[0] == name:
            _, release, kind, file_tags = parsed
            if kind == "sdist" or file_tags == tags:
                releases.setdefault(release, {})[kind] = listed
    return releases


def _pick(line: Line, version: str, files: list[Listed]) -> dict[str, Listed]:
    tags = line.wheel.filename.removesuffix(".whl").split("-", 2)[2]
    releases = _releases(line, files)
    wanted = releases.get(Version(version), {})
    if missing := [k for k in _needed(line) if k not in wanted]:
        known = ", ".join(str(v) for v in sorted(releases)[-8:]) or "none"
        raise UsageError(
            f"the index has no {line.distribution} {version} "
            f"{' and no '.join(missing)}{' with tags ' + tags if 'wheel' in missing else ''} "
            f"(releases it lists: {known})",
            hint="check the version, and the index pip is configured with "
            "(`python -m pip config list`)",
        )
    return wanted


def _parse(filename: str) -> tuple[str, Version, str, str] | None:
    try:
        if filename.endswith(".whl"):
            name, release, _, _ = parse_wheel_filename(filename)
            return name, release, "wheel", filename.removesuffix(".whl").split("-", 2)[2]
        if filename.endswith(".tar.gz"):
            name, release = parse_sdist_filename(filename)
            return name, release, "sdist", ""
    except (InvalidWheelFilename, InvalidSdistFilename, ValueError):
        return None
    return None


def _artifact(client: Client, listed: Listed, cache: Path) -> Artifact:
    if listed.sha256:
        return Artifact(listed.filename, listed.sha256)
    from fp4stack.core import transport

    target = cache / listed.filename
    if not target.exists():
        cache.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        log(f"downloading {listed.filename} from {listed.url} (the source lists no sha256)")
        try:
            transport.download(client, listed.url, partial)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
    return Artifact(listed.filename, sha256_of(target))


def _tag_commit(project: Project, line: Line, tag: str) -> str:
    """The commit ``tag`` points at in the upstream's submodule; '' when it is not there."""
    checkout = project.root / line.submodule
    if not (checkout / ".git").exists():
        return ""
    found = git.git(checkout, "rev-parse", "--verify", "-q", f"{tag}^{{commit}}", check=False)
    if not found.ok:
        log(f"{line.submodule} has no tag {tag}: the new line's commit is left empty", "warn")
    return found.stdout.strip() if found.ok else ""
