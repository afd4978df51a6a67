"""``install`` and ``--undo`` in an environment that was already broken, and a failed
install that puts back what it replaced.

The environment is real (a venv with pip; pip installs every wheel and `pip check` judges)
and small: the official compressed-tensors 0.13.0, nvidia-modelopt 0.44.0 and transformers
4.57.6 wheels from build/cache, installed with --no-deps, and tiny local distributions built
here: ``llmc-pin``, which pins ``transformers<=4.57.3`` as llm-compressor 0.9.0.5 does (the
user's pre-existing conflict), and stand-ins for requests and huggingface-hub, which our
ModelOpt wheel declares. No torch: its absence is one more pre-existing conflict.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from fp4stack.build.wheel import local_version
from fp4stack.core.download import fetch
from fp4stack.installed import install as install_module
from fp4stack.stack.pins import Line, Project, load_project

ROOT = Path(__file__).resolve().parents[3]
LINES = ("compressed-tensors@0.13.0", "modelopt@0.44.0", "transformers@4.57.6")
PIN = "llmc-pin"


def _tiny_wheel(where: Path, name: str, version: str, requires: tuple[str, ...] = ()) -> Path:
    """A pure wheel with metadata and one empty module; nothing else."""
    stem = f"{name.replace('-', '_')}-{version}"
    info = f"{stem}.dist-info"
    files = {
        f"{name.replace('-', '_')}_stub.py": "",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        + "".join(f"Requires-Dist: {req}\n" for req in requires),
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: fp4stack-test\n"
        "Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
    files[f"{info}/RECORD"] = "\n".join([*record, f"{info}/RECORD,,", ""])
    wheel = where / f"{stem}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return wheel


def _quiet_pip_env() -> dict[str, str]:
    """This process's environment without pip configuration (as the pip_env fixture)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    return env | {"PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1"}


def _pip(python: Path, *args: str | Path) -> str:
    argv = [python, "-m", "pip", "--disable-pip-version-check", *map(str, args)]
    done = subprocess.run(argv, capture_output=True, text=True, env=_quiet_pip_env())
    assert done.returncode in (0, 1), done.stdout + done.stderr
    return done.stdout


def _versions(python: Path) -> dict[str, str]:
    query = (
        "import json; from importlib import metadata; "
        "print(json.dumps({d.metadata['Name'].lower(): d.version "
        "for d in metadata.distributions()}))"
    )
    done = subprocess.run([python, "-c", query], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def _lines(project: Project) -> list[Line]:
    return [project.line(line_id) for line_id in LINES]


@pytest.fixture(scope="module")
def project() -> Project:
    return load_project(ROOT)


@pytest.fixture(scope="module")
def broken_env(project, tmp_path_factory) -> Iterator[Path]:
    """The venv with the pre-existing conflicts, every distribution official."""
    where = tmp_path_factory.mktemp("broken-env")
    subprocess.run([sys.executable, "-m", "venv", where / "venv"], check=True)
    python = where / "venv" / "bin" / "python"
    official = [fetch(ln.distribution, ln.wheel, project.cache) for ln in _lines(project)]
    tiny = [
        _tiny_wheel(where, PIN, "0.9.0", ("transformers<=4.57.3,>=4.54.0", "compressed-tensors")),
        _tiny_wheel(where, "requests", "2.99.0"),
        _tiny_wheel(where, "huggingface-hub", "0.99.0"),
    ]
    _pip(python, "install", "-q", "--no-deps", *official, *tiny)
    yield python


@pytest.fixture
def official(project, broken_env, pip_env) -> dict[str, str]:
    """The versions of the broken environment as made, checked before each test."""
    versions = _versions(broken_env)
    expected = {ln.distribution: ln.version for ln in _lines(project)}
    assert {d: versions.get(d) for d in expected} == expected
    return versions


def _conflicts(python: Path) -> list[str]:
    return sorted(ln for ln in _pip(python, "check").splitlines() if ln.strip())


def test_install_and_undo_leave_the_pre_existing_conflict_alone(
    project, broken_env, official, run_cli
):
    before = _conflicts(broken_env)
    pinned = f"{PIN} 0.9.0 has requirement transformers<=4.57.3,>=4.54.0, but you have "
    assert f"{pinned}transformers 4.57.6." in before

    code, out, err = run_cli("install", "--python", broken_env)
    assert (code, err) == (0, "")
    for line in _lines(project):
        patched = local_version(project, line)
        assert f"{line.distribution}: {line.version} -> {patched} (" in out
        assert _versions(broken_env)[line.distribution] == patched
    after = _conflicts(broken_env)
    transformers = local_version(project, project.line("transformers@4.57.6"))
    assert f"{pinned}transformers {transformers}." in after, "the conflict is still there"
    assert len(after) == len(before), "and no other was made"

    code, out, err = run_cli("install", "--undo", "--python", broken_env)
    assert (code, err) == (0, "")
    assert _versions(broken_env) == official
    assert _conflicts(broken_env) == before


def test_a_failed_install_puts_back_what_it_replaced(
    project, broken_env, official, run_cli, monkeypatch, tmp_path
):
    """The last of the three (transformers) fails in pip: the two swapped before it are put
    back, without the user running --undo."""
    transformers = project.line("transformers@4.57.6")
    broken = tmp_path / f"transformers-{local_version(project, transformers)}-py3-none-any.whl"
    broken.write_bytes(b"not a zip archive")
    real = install_module.patched_wheel_path
    monkeypatch.setattr(
        install_module,
        "patched_wheel_path",
        lambda proj, line: broken if line.id == transformers.id else real(proj, line),
    )
    before = _conflicts(broken_env)

    code, out, err = run_cli("install", "--python", broken_env)
    assert (code, out) == (1, "")
    first, *rest = err.splitlines()
    assert first.startswith(f"ERROR: cannot install {broken.name} into {broken_env}")
    assert first.endswith("; put back transformers 4.57.6, nvidia-modelopt 0.44.0, "
                          "compressed-tensors 0.13.0")  # fmt: skip
    assert not any(ln.startswith("ERROR:") for ln in rest)
    assert "Traceback" not in err
    assert "the environment is as it was before this run" in err
    assert _versions(broken_env) == official
    assert _conflicts(broken_env) == before


def test_a_conflict_the_swap_creates_fails_and_is_undone(
    project, broken_env, official, run_cli, tmp_path
):
    """A distribution that refuses our transformers build by its local label: the swap makes
    a conflict that was not there, so the run fails and everything is put back."""
    transformers = local_version(project, project.line("transformers@4.57.6"))
    picky = _tiny_wheel(tmp_path, "picky", "1.0", (f"transformers!={transformers}",))
    _pip(broken_env, "install", "-q", "--no-deps", picky)
    try:
        before = _conflicts(broken_env)
        code, out, err = run_cli("install", "--python", broken_env)
        assert (code, out) == (1, "")
        assert err.splitlines()[0] == (
            f"ERROR: `pip check` in {broken_env} reports what it did not before: "
            f"picky 1.0 has requirement transformers!={transformers}, but you have "
            f"transformers {transformers}.; put back transformers 4.57.6, "
            "nvidia-modelopt 0.44.0, compressed-tensors 0.13.0"
        )
        assert _versions(broken_env) | {"picky": "1.0"} == official | {"picky": "1.0"}
        assert _conflicts(broken_env) == before
    finally:
        _pip(broken_env, "uninstall", "-q", "-y", "picky")


def test_a_failed_undo_puts_our_builds_back(
    project, broken_env, official, run_cli, monkeypatch, tmp_path
):
    """--undo whose official transformers wheel pip refuses: the patched builds it already
    replaced go back in, and the environment is as the install left it."""
    code, _, err = run_cli("install", "--python", broken_env)
    assert code == 0, err
    patched = _versions(broken_env)
    transformers = project.line("transformers@4.57.6")
    broken = tmp_path / transformers.wheel.filename
    broken.write_bytes(b"not a zip archive")
    real = install_module.fetch
    monkeypatch.setattr(
        install_module,
        "fetch",
        lambda dist, artifact, cache: broken
        if artifact == transformers.wheel
        else real(dist, artifact, cache),
    )
    try:
        code, out, err = run_cli("install", "--undo", "--python", broken_env)
        assert (code, out) == (1, "")
        ours = {ln.distribution: local_version(project, ln) for ln in _lines(project)}
        assert err.splitlines()[0].endswith(
            f"; put back transformers {ours['transformers']}, "
            f"nvidia-modelopt {ours['nvidia-modelopt']}, "
            f"compressed-tensors {ours['compressed-tensors']}"
        )
        assert _versions(broken_env) == patched
    finally:
        monkeypatch.setattr(install_module, "fetch", real)
        code, _, err = run_cli("install", "--undo", "--python", broken_env)
    assert code == 0, err
    assert _versions(broken_env) == official
