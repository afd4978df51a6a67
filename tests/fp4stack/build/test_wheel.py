"""Patched wheels: only patched files change, RECORD is right, and builds are reproducible."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import zipfile

import pytest

from fp4stack.build.wheel import build_wheel
from fp4stack.core.errors import BuildError
from fp4stack.stack.apply import apply
from fp4stack.stack.refresh import refresh

from ..toy_upstream import commit_edit, toy_line


def _raw(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    archive.fp.seek(info.header_offset + 26)
    name_len, extra_len = (
        int.from_bytes(archive.fp.read(2), "little"),
        int.from_bytes(archive.fp.read(2), "little"),
    )
    archive.fp.seek(info.header_offset + 30 + name_len + extra_len)
    return archive.fp.read(info.compress_size)


def _patched_build(toy):
    upstream = toy_line(toy)
    apply(toy, upstream)
    commit_edit(toy.src(upstream), "src/toy/core.py", "def scale(x):\n    return x * 3\n")
    refresh(toy, upstream)
    return upstream, build_wheel(toy, upstream)


def test_only_patched_files_change_and_the_rest_is_copied_compressed(toy):
    upstream, path = _patched_build(toy)
    assert path.name.startswith("toy-1.0+fp4stack.") and path.name.endswith("-py3-none-any.whl")
    official = zipfile.ZipFile(toy.cache / upstream.wheel.filename)
    patched = zipfile.ZipFile(path)
    assert patched.read("toy/core.py").endswith(b"x * 3\n")
    for name in ("toy/__init__.py", "toy/_native.so"):
        assert _raw(patched, patched.getinfo(name)) == _raw(official, official.getinfo(name))
    info_dir = path.name.split("-py3")[0] + ".dist-info"
    assert f"Version: {path.name.split('-')[1]}" in patched.read(f"{info_dir}/METADATA").decode()


def test_record_lists_every_member_with_its_hash(toy):
    _, path = _patched_build(toy)
    patched = zipfile.ZipFile(path)
    record_name = next(n for n in patched.namelist() if n.endswith(".dist-info/RECORD"))
    rows = list(csv.reader(io.StringIO(patched.read(record_name).decode())))
    assert {r[0] for r in rows} == set(patched.namelist())
    for name, digest, size in rows:
        if name == record_name:
            assert digest == size == ""
            continue
        data = patched.read(name)
        expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        assert (digest, int(size)) == (f"sha256={expected}", len(data)), name


def test_two_builds_are_byte_identical(toy):
    upstream, first = _patched_build(toy)
    data = first.read_bytes()
    assert build_wheel(toy, upstream).read_bytes() == data


def test_a_pristine_file_that_differs_from_the_wheel_is_refused(toy):
    upstream = toy_line(toy)
    apply(toy, upstream)
    wheel = toy.cache / upstream.wheel.filename
    # Re-pin a wheel whose core.py is not what the sdist has: the patch would not apply to it.
    rebuilt = io.BytesIO()
    with zipfile.ZipFile(wheel) as old, zipfile.ZipFile(rebuilt, "w") as new:
        for info in old.infolist():
            data = old.read(info)
            new.writestr(info, data + b"# drift\n" if info.filename == "toy/core.py" else data)
    wheel.write_bytes(rebuilt.getvalue())
    pins = toy.root / "upstream" / "pins.toml"
    old_sha = upstream.wheel.sha256
    pins.write_text(
        pins.read_text().replace(old_sha, hashlib.sha256(rebuilt.getvalue()).hexdigest())
    )
    from fp4stack.stack.pins import load_project

    toy = load_project(toy.root)
    upstream = toy_line(toy)
    commit_edit(toy.src(upstream), "src/toy/core.py", "def scale(x):\n    return x * 3\n")
    refresh(toy, upstream)
    with pytest.raises(BuildError, match=r"src/toy/core\.py"):
        build_wheel(toy, upstream)


def test_verification_catches_a_changed_compiled_member(toy, tmp_path):
    from fp4stack.build.wheel import verify_unchanged

    upstream = toy_line(toy)
    official_path = toy.cache / upstream.wheel.filename
    tampered = tmp_path / "tampered.whl"
    with zipfile.ZipFile(official_path) as old, zipfile.ZipFile(tampered, "w") as new:
        for info in old.infolist():
            data = old.read(info)
            new.writestr(info, data.replace(b"pretend", b"PRETEND"))
    with (
        zipfile.ZipFile(official_path) as official,
        zipfile.ZipFile(tampered) as patched,
        pytest.raises(BuildError, match=r"toy/_native\.so differs"),
    ):
        verify_unchanged(official, patched, {})
