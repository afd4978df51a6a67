"""Build a patched wheel by repacking the official one: only patched files change.

Every member the stack does not touch keeps its compressed bytes; the dist-info directory is
renamed for the PEP 440 local version ``<version>+fp4stack.<id>``, METADATA gets the new
version, and RECORD is regenerated. The result depends only on the official wheel and the
patched files, so two builds are byte-identical.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import os
import re
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from fp4stack.build.metadata import SDIST_METADATA, MetadataError, dependencies, with_dependencies
from fp4stack.core import git
from fp4stack.core.download import fetch
from fp4stack.core.errors import BuildError, stage
from fp4stack.core.log import log
from fp4stack.core.zipcopy import ZipCopier, raw_chunks
from fp4stack.stack import sources
from fp4stack.stack.pins import Line, Project
from fp4stack.stack.series import stack_digest

LOCAL_LABEL = "fp4stack"
ID_LENGTH = 10


@dataclass(frozen=True)
class WheelName:
    """The parts of a wheel file name that a repack keeps or changes."""

    name: str
    version: str
    tags: str

    @classmethod
    def parse(cls, filename: str) -> WheelName:
        name, version, tags = filename.removesuffix(".whl").split("-", 2)
        return cls(name, version, tags)

    def with_version(self, version: str) -> str:
        return f"{self.name}-{version}-{self.tags}.whl"


def local_version(project: Project, line: Line) -> str:
    """``<version>+fp4stack.<id>``, the id derived from the series content."""
    digest = stack_digest(project.patches(line))[:ID_LENGTH]
    return f"{line.version}+{LOCAL_LABEL}.{digest}"


def patched_wheel_path(project: Project, line: Line) -> Path:
    """Where ``build_wheel`` writes the patched wheel of ``upstream``."""
    official = WheelName.parse(line.wheel.filename)
    return project.dist / official.with_version(local_version(project, line))


def build_wheel(project: Project, line: Line) -> Path:
    """Repack the official wheel with the files the applied series changed; return its path."""
    official_path = fetch(line.distribution, line.wheel, project.cache)
    replacements = _replacements(project, line, official_path)
    target = patched_wheel_path(project, line)
    temporary = target.with_name(f".{target.name}.tmp")
    started = time.perf_counter()
    try:
        with stage(BuildError, f"{line.id}: cannot write {target.name}"):
            target.parent.mkdir(parents=True, exist_ok=True)
            with zipfile.ZipFile(official_path) as official, temporary.open("wb") as out:
                _repack(official, out, replacements, local_version(project, line))
            with zipfile.ZipFile(official_path) as official, zipfile.ZipFile(temporary) as patched:
                verify_unchanged(official, patched, replacements)
            os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    _remove_older_builds(target)
    log(f"{line.id}: wrote {target.name} in {time.perf_counter() - started:.1f} s "
        f"({len(replacements)} patched files)")  # fmt: skip
    return target


def _replacements(project: Project, line: Line, official_path: Path) -> dict[str, bytes | None]:
    """Wheel member -> patched bytes (None: deleted), checked against the official wheel."""
    repo = project.src(line)
    base, head = sources.UPSTREAM_BRANCH, "HEAD"
    prefix = f"{line.package_root}/" if line.package_root else ""
    with zipfile.ZipFile(official_path) as official:
        members = set(official.namelist())
        top_level = {name.split("/", 1)[0] for name in members}
        replacements: dict[str, bytes | None] = {}
        for path in git.changed_files(repo, base, head):
            if path == SDIST_METADATA and line.source == "sdist":
                metadata = f"{_dist_info_dir(official)}/METADATA"
                replacements[metadata] = _carried(repo, line, official.read(metadata))
                continue
            member = path.removeprefix(prefix)
            if not path.startswith(prefix) or member.split("/", 1)[0] not in top_level:
                continue  # tests, docs, build files: not shipped in the wheel
            pristine = git.show_file(repo, base, path)
            if member in members and pristine != official.read(member):
                raise BuildError(
                    f"{path} in the pristine {line.source} differs from {member} in "
                    f"{line.wheel.filename}: the patch would not apply to what the wheel ships"
                )
            replacements[member] = git.show_file(repo, head, path)
    return replacements


def _carried(repo: Path, line: Line, metadata: bytes) -> bytes:
    """The wheel's METADATA with the patched PKG-INFO's dependency fields (see ``metadata``)."""
    pristine = git.show_file(repo, sources.UPSTREAM_BRANCH, SDIST_METADATA) or b""
    patched = git.show_file(repo, "HEAD", SDIST_METADATA) or b""
    if dependencies(pristine) != dependencies(metadata):
        raise BuildError(
            f"{line.id}: the pristine sdist's {SDIST_METADATA} declares other dependencies than "
            f"{line.wheel.filename}'s METADATA: a patch to it would not say what the wheel needs"
        )
    try:
        return with_dependencies(metadata, patched)
    except MetadataError as error:
        raise BuildError(
            f"{line.id}: cannot carry {SDIST_METADATA}'s dependencies: {error}"
        ) from None


def _repack(
    official: zipfile.ZipFile,
    out: io.BufferedWriter,
    replacements: dict[str, bytes | None],
    version: str,
) -> None:
    old_info = _dist_info_dir(official)
    name = old_info.removesuffix(".dist-info").rsplit("-", 1)[0]
    new_info = f"{name}-{version}.dist-info"
    record = _read_record(official, f"{old_info}/RECORD")
    writer = ZipCopier(out)
    rows: list[tuple[str, str, int]] = []
    pending_new = sorted(m for m in replacements if m not in official.NameToInfo)
    for info in official.infolist():
        member = info.filename
        if member.startswith(f"{old_info}/"):
            for new_member in pending_new:  # new files go before the dist-info directory
                rows.append(_add(writer, new_member, replacements[new_member], _new_date()))
            pending_new = []
        renamed = (
            new_info + member[len(old_info) :] if member.startswith(old_info + "/") else member
        )
        if member == f"{old_info}/RECORD":
            continue
        if member in replacements or member == f"{old_info}/METADATA":
            data = replacements.get(member, official.read(member))
            if data is None:
                continue
            if member == f"{old_info}/METADATA":
                data = _set_version(data, version)
            rows.append(_add(writer, renamed, data, info.date_time, info.external_attr))
        elif info.is_dir():
            continue
        else:
            writer.copy(official, info, renamed)
            digest, size = record.get(member) or _hash(official.read(member))
            rows.append((renamed, digest, size))
    record_name = f"{new_info}/RECORD"
    writer.add(record_name, _record_bytes(rows, record_name), _new_date())
    writer.close()


def verify_unchanged(
    official: zipfile.ZipFile, patched: zipfile.ZipFile, replacements: dict[str, bytes | None]
) -> None:
    """Check that every member outside dist-info and the patch is stored byte for byte as in
    the official wheel (compiled files included); raise BuildError naming the first that is not."""
    stored = {info.filename: info for info in patched.infolist()}
    for info in official.infolist():
        name = info.filename
        if name in replacements or ".dist-info/" in name or info.is_dir():
            continue
        copy = stored.get(name)
        if copy is None or (copy.CRC, copy.compress_size) != (info.CRC, info.compress_size):
            raise BuildError(f"{patched.filename}: {name} differs from the official wheel")
        if any(a != b for a, b in zip(raw_chunks(official, info), raw_chunks(patched, copy),
                                      strict=True)):  # fmt: skip
            raise BuildError(f"{patched.filename}: {name} differs from the official wheel")


def _add(
    writer: ZipCopier,
    name: str,
    data: bytes | None,
    date_time: tuple[int, int, int, int, int, int],
    external_attr: int = 0o100644 << 16,
) -> tuple[str, str, int]:
    assert data is not None
    writer.add(name, data, date_time, external_attr)
    return (name, *_hash(data))


def _hash(data: bytes) -> tuple[str, int]:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}", len(data)


def _dist_info_dir(official: zipfile.ZipFile) -> str:
    dirs = {n.split("/", 1)[0] for n in official.namelist() if ".dist-info/" in n}
    if len(dirs) != 1:
        raise BuildError(f"{official.filename}: expected one .dist-info directory, found {dirs}")
    return dirs.pop()


def _read_record(official: zipfile.ZipFile, name: str) -> dict[str, tuple[str, int]]:
    rows = csv.reader(io.StringIO(official.read(name).decode()))
    return {row[0]: (row[1], int(row[2])) for row in rows if len(row) == 3 and row[1]}


def _record_bytes(rows: list[tuple[str, str, int]], record_name: str) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerows(rows)
    writer.writerow((record_name, "", ""))
    return text.getvalue().encode()


def _set_version(metadata: bytes, version: str) -> bytes:
    updated, count = re.subn(rb"^Version: .*$", f"Version: {version}".encode(), metadata,
                             count=1, flags=re.M)  # fmt: skip
    if not count:
        raise BuildError("METADATA has no Version field")
    return updated


def _new_date() -> tuple[int, int, int, int, int, int]:
    epoch = max(int(os.environ.get("SOURCE_DATE_EPOCH", "315532800")), 315532800)
    return time.gmtime(epoch)[:6]


def _remove_older_builds(target: Path) -> None:
    """Drop earlier fp4stack builds of the same line (distribution and release): one wheel
    per line in dist/. Wheels of the other lines of the distribution stay beside it."""
    keep = WheelName.parse(target.name)
    release = keep.version.split("+", 1)[0]
    for other in target.parent.glob(f"{keep.name}-{release}+{LOCAL_LABEL}.*.whl"):
        if other != target:
            other.unlink()
