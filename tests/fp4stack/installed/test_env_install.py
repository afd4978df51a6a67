"""``doctor --env`` and ``install`` against real environments.

The environment is small and real: torch's CPU build, transformers 4.57.6 and the official
compressed-tensors 0.13.0 wheel from build/cache (build/venv/doctor-ct-0.13.0, made once and
reused; the test venv of the compressed-tensors line has the patched build and llmcompressor,
and is left alone). Nothing is mocked: the probes run in that interpreter, pip installs
the wheels. The fake environment of the refusal tests holds only a dist-info directory.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fp4stack.core.download import fetch
from fp4stack.stack.pins import load_project
from fp4stack.testing import envs
from fp4stack.testing.envs import EnvRecipe

ROOT = Path(__file__).resolve().parents[3]
LINE = "compressed-tensors@0.13.0"
ENV_NAME = "doctor-ct-0.13.0"


def _pip(python: Path, *args: str) -> None:
    subprocess.run([python, "-m", "pip", "-q", "--disable-pip-version-check", *args], check=True)


def _version(python: Path) -> str:
    query = "from importlib.metadata import version; print(version('compressed-tensors'))"
    done = subprocess.run([python, "-c", query], capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.fixture(scope="module")
def pristine_ct() -> Path:
    """The small real venv with the official compressed-tensors 0.13.0 installed."""
    project = load_project(ROOT)
    line = project.line(LINE)
    official = fetch(line.distribution, line.wheel, project.cache)
    recipe = EnvRecipe(torch="2.13.0", requires=("transformers==4.57.6",), wheel=str(official))
    python = envs.python(envs.ensure(project.venv(ENV_NAME), recipe))
    if _version(python) != "0.13.0":  # an earlier run stopped between install and undo
        _pip(python, "install", "--no-deps", "--force-reinstall", str(official))
    return python


def _env_report(run_cli, python: Path) -> tuple[int, dict]:
    code, out, err = run_cli("doctor", "--env", "--python", python, "--json")
    assert code in (0, 1), err
    report = json.loads(out)
    return code, {p["distribution"]: p for p in report["packages"]}


def _statuses(package: dict) -> dict[str, tuple[str, str]]:
    return {Path(d["patch"]).stem: (d["status"], d["method"]) for d in package["defects"]}


def test_env_tells_pristine_from_patched_and_install_undo_round_trip(pristine_ct, run_cli):
    code, before = _env_report(run_cli, pristine_ct)
    ct = before["compressed-tensors"]
    assert code == 1 and ct["line"] == LINE and ct["build"].startswith("official release")
    statuses = _statuses(ct)
    assert len(statuses) == 9
    assert {s for s, _ in statuses.values()} == {"affected"}, statuses
    behaviour = {n for n, (_, m) in statuses.items() if m == "behaviour"}
    assert behaviour == {
        "store-mxfp4-scales-as-standard-e8m0-bias-127",
        "decompress-weights-into-the-dtype-the-model-was-loaded-in",
        "do-arithmetic-on-fp8-scales-in-a-non-fp8-dtype",
        "pack-nvfp4-weights-on-the-meta-device-without-torch-compile",
    }
    assert ct["command"] == f"fp4stack install --python {pristine_ct} compressed-tensors"

    code, out, err = run_cli("install", "--python", pristine_ct, "compressed-tensors")
    assert code == 0, err
    assert "compressed-tensors: 0.13.0 -> 0.13.0+fp4stack." in out
    _, after = _env_report(run_cli, pristine_ct)
    ct = after["compressed-tensors"]
    assert "the current series" in ct["build"]
    assert {s for s, _ in _statuses(ct).values()} == {"fixed"}, _statuses(ct)
    assert ct["command"] == ""
    code, out, _ = run_cli("install", "--python", pristine_ct, "compressed-tensors")
    assert code == 0 and "already installed" in out, "idempotent"

    code, out, err = run_cli("install", "--undo", "--python", pristine_ct, "compressed-tensors")
    assert code == 0, err
    assert "-> 0.13.0 (compressed_tensors-0.13.0-py3-none-any.whl)" in out
    assert _version(pristine_ct) == "0.13.0"
    code, out, _ = run_cli("doctor", "--env", "--python", pristine_ct)
    assert code == 1
    assert "compressed-tensors 0.13.0: official release" in out
    assert "9 known defects, 9 present" in out
    assert (
        "affected  store-mxfp4-scales-as-standard-e8m0-bias-127  (behaviour: MXFP4 scale "
        "1.0 stored as E8M0 byte 125" in out
    )
    assert f"fix: fp4stack install --python {pristine_ct} compressed-tensors" in out


@pytest.fixture
def fake_env(tmp_path) -> Path:
    """A venv (no pip) whose only distribution is a compressed-tensors 0.12.2 dist-info."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", tmp_path / "v"], check=True)
    python = tmp_path / "v" / "bin" / "python"
    query = "import sysconfig; print(sysconfig.get_path('purelib'))"
    site = Path(
        subprocess.run(
            [python, "-c", query], capture_output=True, text=True, check=True
        ).stdout.strip()
    )
    info = site / "compressed_tensors-0.12.2.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: compressed-tensors\nVersion: 0.12.2\n"
    )
    (info / "RECORD").write_text("compressed_tensors/__init__.py,,\n")
    return python


def test_release_without_a_line_is_reported_with_the_nearest(fake_env, run_cli):
    code, out, _ = run_cli("doctor", "--env", "--python", fake_env)
    assert code == 0
    assert "compressed-tensors 0.12.2: official release" in out
    assert "no fp4stack line for this release; the nearest line is compressed-tensors@0.13.0" in out


def test_install_refuses_a_release_without_a_line(fake_env, run_cli):
    code, out, err = run_cli("install", "--python", fake_env)
    assert code == 2 and out == ""
    lines = ", ".join(line.id for line in load_project(ROOT).select(["compressed-tensors"]))
    assert "compressed-tensors@0.13.0, compressed-tensors@0.17.0" in lines  # every line named
    assert (
        f"compressed-tensors 0.12.2: fp4stack has no line for this release (lines: {lines})" in err
    )


def test_install_refuses_what_is_not_installed(fake_env, run_cli):
    code, _, err = run_cli("install", "--python", fake_env, "vllm")
    assert code == 2 and "vllm is not installed" in err


def test_bad_python_is_a_usage_error(tmp_path, run_cli):
    code, _, err = run_cli("doctor", "--env", "--python", tmp_path / "nope")
    assert code == 2 and "cannot run it" in err


def test_every_probe_a_patch_names_exists_and_every_probe_is_named():
    from fp4stack.installed.behaviour import PROBE, known_probes
    from fp4stack.stack.series import parse_patch

    named = {p for path in (ROOT / "patches").glob("*/*/*.patch")
             for p in parse_patch(path).trailer(PROBE)}  # fmt: skip
    assert named and named == set(known_probes())
