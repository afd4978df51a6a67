"""``fp4stack install``: put the patched wheel of exactly the installed release into an
environment with pip (``--no-deps --force-reinstall``), or the official one back (``--undo``).
Nothing else changes: no dependency is resolved, and ``pip check`` must say the same after."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fp4stack.build.wheel import build_wheel, local_version, patched_wheel_path
from fp4stack.core.download import fetch
from fp4stack.core.errors import EnvError, UsageError, stage
from fp4stack.core.log import log
from fp4stack.core.runner import run
from fp4stack.installed.defects import distributions, line_for
from fp4stack.installed.probe import Installed, probe
from fp4stack.stack.apply import apply
from fp4stack.stack.pins import Line, Project


@dataclass(frozen=True)
class Change:
    """One distribution replaced (or left, when ``wheel`` is empty: already there)."""

    distribution: str
    before: str
    after: str
    wheel: str
    skipped: str = ""  # why it was left as it is (no line for its release)


def _lines_we_have(project: Project, upstream: str) -> str:
    return ", ".join(ln.id for ln in project.lines_of(upstream))


def _no_line(project: Project, dist: Installed, upstream: str) -> UsageError:
    return UsageError(
        f"{dist.name} {dist.version}: fp4stack has no line for this release "
        f"(lines: {_lines_we_have(project, upstream)})",
        hint="install a release we have a line for, or add one with `fp4stack rebase`",
    )


def _chosen(
    project: Project, installed: dict[str, Installed], names: list[str]
) -> tuple[list[tuple[Installed, Line]], list[Change]]:
    """The distributions to replace, and those left (unnamed, without a line)."""
    dists = distributions(project)
    by_upstream = {up: d for d, up in dists.items()}
    wanted = [by_upstream.get(n, n) for n in names] or [d for d in dists if d in installed]
    chosen, skipped, refusals = [], [], []
    for name in wanted:
        if name not in dists:
            raise UsageError(
                f"{name}: not a distribution fp4stack patches (ours: {', '.join(dists)})"
            )
        if name not in installed:
            raise UsageError(
                f"{name} is not installed in this environment",
                hint="install the release first; fp4stack replaces it in place",
            )
        dist, upstream = installed[name], dists[name]
        line = line_for(project, upstream, dist.public)
        if line is None and names:
            raise _no_line(project, dist, upstream)
        if line is None:
            refusals.append(_no_line(project, dist, upstream))
            skipped.append(Change(name, dist.version, dist.version, "", str(refusals[-1])))
        else:
            chosen.append((dist, line))
    if not chosen and refusals:
        raise refusals[0]
    if not chosen:
        raise UsageError(
            "none of fp4stack's upstreams is installed in this environment",
            hint=f"fp4stack patches: {', '.join(dists)}",
        )
    return chosen, skipped


def _wheel(project: Project, line: Line, undo: bool) -> Path:
    if undo:
        return fetch(line.distribution, line.wheel, project.cache)
    wheel = patched_wheel_path(project, line)
    if not wheel.is_file():
        log(f"{line.id}: dist/ has no {wheel.name}; building it")
        apply(project, line)
        wheel = build_wheel(project, line)
    return wheel


def _pip_check(python: Path) -> list[str]:
    result = run([python, "-m", "pip", "check"], check=False)
    return sorted(ln for ln in result.stdout.splitlines() if ln.strip())


def install(project: Project, python: Path, names: list[str], undo: bool = False) -> list[Change]:
    """Replace each named (default: each installed) distribution of ours in ``python``'s
    environment by our patched wheel of the same release, or by the official one (``undo``).

    :raises UsageError: not installed, or a release without a line (naming our lines).
    :raises EnvError: pip fails, or ``pip check`` reports something it did not before.
    """
    installed = probe(python, list(distributions(project))).packages
    chosen, changes = _chosen(project, installed, names)
    before_check = _pip_check(python)
    for dist, line in chosen:
        target = line.version if undo else local_version(project, line)
        if dist.version == target:
            changes.append(Change(dist.name, dist.version, target, ""))
            continue
        wheel = _wheel(project, line, undo)
        with stage(EnvError, f"cannot install {wheel.name} into {python}"):
            run(
                [
                    python,
                    "-m",
                    "pip",
                    "install",
                    "-q",
                    "--disable-pip-version-check",
                    "--no-deps",
                    "--force-reinstall",
                    wheel,
                ]
            )
        changes.append(Change(dist.name, dist.version, target, str(wheel)))
    after_check = _pip_check(python)
    if after_check != before_check:
        new = sorted(set(after_check) - set(before_check)) or after_check
        raise EnvError(
            f"`pip check` in {python} changed: {'; '.join(new)}",
            hint="undo with `fp4stack install --undo`, and report it: the patched wheel "
            "should declare the same dependencies",
        )
    return changes
