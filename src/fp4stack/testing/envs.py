"""Test virtual environments: torch's CPU build first, then requirements, then the build."""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from fp4stack.core import pipcheck
from fp4stack.core.errors import EnvError, stage
from fp4stack.core.fs import sha256_of, write_atomic
from fp4stack.core.installer import Installer
from fp4stack.core.log import log
from fp4stack.core.pipconfig import pip_settings
from fp4stack.core.runner import run

STAMP = "fp4stack-env.json"


@dataclass(frozen=True)
class EnvRecipe:
    """Everything that decides what a venv holds; a change rebuilds it."""

    torch: str
    requires: tuple[str, ...] = ()
    requires_no_deps: tuple[str, ...] = ()
    requirement_files: tuple[str, ...] = ()
    wheel: str | None = None
    # other patched wheels, installed together with ``wheel`` (and checked with it)
    extra_wheels: tuple[str, ...] = ()
    editable: str | None = None
    remove: tuple[str, ...] = ()
    # pins that replace what packages require (uv's --override): see EnvSpec.overrides
    overrides: tuple[str, ...] = ()
    inputs: dict[str, str] = field(default_factory=dict)

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()


def python(venv: Path) -> Path:
    """The interpreter of ``venv``."""
    return venv / "bin" / "python"


def ensure(venv: Path, recipe: EnvRecipe) -> Path:
    """Create or update ``venv`` to match ``recipe``; a no-op when its stamp matches."""
    # Hash what the recipe points at, so a rebuilt wheel or an edited requirements file
    # changes the stamp even when the names stay the same.
    files = [
        *recipe.requirement_files,
        *([recipe.wheel] if recipe.wheel else []),
        *recipe.extra_wheels,
    ]
    # An editable project's dependencies live in its pyproject.toml: a new one must reinstall.
    files += [str(Path(recipe.editable) / "pyproject.toml")] if recipe.editable else []
    recipe = replace(recipe, inputs={**recipe.inputs, **{f: sha256_of(Path(f)) for f in files}})
    stamp = venv / STAMP
    if _stamped_digest(stamp) == recipe.digest():
        return venv
    log(f"preparing test environment {venv}")
    stamp.unlink(missing_ok=True)
    hint = (
        "the output below is uv's (installing from the sources pip is configured with): "
        "check that your package index is reachable and that the pins in "
        "upstream/pins.toml exist on it"
    )
    with stage(EnvError, f"cannot prepare the test environment {venv}", hint=hint):
        _build(venv, recipe)
        write_atomic(
            stamp, json.dumps({"digest": recipe.digest(), "recipe": asdict(recipe)}, indent=1)
        )
    return venv


def _stamped_digest(stamp: Path) -> str | None:
    """The recipe digest an env was built from; None if absent or unreadable (rebuild)."""
    try:
        return str(json.loads(stamp.read_text())["digest"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _build(venv: Path, recipe: EnvRecipe) -> None:
    if not python(venv).exists():
        shutil.rmtree(venv, ignore_errors=True)
        # the stdlib venv (not uv's) so the env has pip: tests and `pip check` use it
        run([sys.executable, "-m", "venv", venv])
    overrides = None
    if recipe.overrides:
        overrides = venv / "fp4stack-overrides.txt"
        write_atomic(overrides, "".join(f"{pin}\n" for pin in recipe.overrides))
    uv = Installer(python(venv), pip_settings("install"), overrides)
    torch = f"torch=={recipe.torch}"
    # torch first, alone: anything that pulls torch in later must find this CPU build
    # already satisfying it, or the resolver takes a CUDA build of several GB.
    uv.install(torch)
    if recipe.requires or recipe.requirement_files:
        requirement_args = [arg for f in recipe.requirement_files for arg in ("-r", f)]
        uv.install(*recipe.requires, *requirement_args, torch)
    if recipe.editable:
        uv.install("-e", recipe.editable, torch)
    if recipe.requires_no_deps:
        # an existing venv still has them from its last build, and `pip check` would refuse
        # them below; they go back in after the check
        uv.uninstall(recipe.requires_no_deps)
    if recipe.wheel:
        wheels = [recipe.wheel, *recipe.extra_wheels]
        uv.install(*wheels, torch)
        # same version as the official wheel: only a reinstall swaps the files
        uv.install(*wheels, no_deps=True, reinstall=True)
        check = run([python(venv), "-m", "pip", "check"], check=False)
        unmet = unexpected_conflicts(check.stdout, recipe.overrides)
        if check.returncode != 0 and (unmet or not check.stdout.strip()):
            names = ", ".join(Path(w).name for w in wheels)
            raise EnvError(f"`pip check` fails with {names}:\n" + "\n".join(unmet))
    if recipe.requires_no_deps:
        # after the check: these are installed precisely because their pins are not met
        uv.install(*recipe.requires_no_deps, no_deps=True)
    if recipe.remove:
        uv.uninstall(recipe.remove)


def unexpected_conflicts(pip_check: str, overrides: tuple[str, ...]) -> list[str]:
    """The conflicts in ``pip check``'s output not explained by ``overrides``: a requirement
    on an overridden distribution is unmet on purpose ("…, but you have flashinfer-python
    0.7.4." when the override is ``flashinfer-python==0.7.4``), every other conflict counts."""
    overridden = {canonicalize_name(Requirement(pin).name) for pin in overrides}
    unmet = []
    lines = [ln.strip() for ln in pip_check.splitlines()]
    for conflict in (
        pipcheck.parse_line(ln) for ln in lines if ln and ln != pipcheck.NOTHING_BROKEN
    ):
        if canonicalize_name(conflict.installed.split(" ")[0]) in overridden:
            log(f"pip check, unmet on purpose (override): {conflict.text}")
        else:
            unmet.append(conflict.text)
    return unmet


def site_packages(venv: Path) -> Path:
    """The venv's pure-library directory."""
    query = "import sysconfig; print(sysconfig.get_path('purelib'))"
    return Path(run([python(venv), "-c", query]).stdout.strip())
