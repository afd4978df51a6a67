"""``fp4stack install``: put the patched wheel of exactly the installed release into an
environment with pip (``--no-deps --force-reinstall``), or the official one back (``--undo``).
Nothing else changes: no dependency is resolved, and ``pip check`` may report no conflict it did
not report before (see :mod:`fp4stack.installed.pipcheck`). A run that fails puts back what it
replaced."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fp4stack.build.wheel import WheelName, build_wheel, local_version, patched_wheel_path
from fp4stack.core.download import fetch
from fp4stack.core.errors import EnvError, FP4StackError, UsageError, stage
from fp4stack.core.log import log
from fp4stack.core.pipcheck import Conflict, new_conflicts, pip_check
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


@dataclass(frozen=True)
class Swap:
    """One distribution to replace, with the wheel that puts it back if the run fails."""

    dist: Installed
    line: Line
    target: str  # the version ``wheel`` installs
    wheel: Path
    previous: Path  # the wheel of ``dist.version``, or the official one (see ``exact``)
    exact: bool  # whether ``previous`` is the installed build itself


def _previous_wheel(project: Project, line: Line, dist: Installed) -> tuple[Path, bool]:
    """The wheel that reinstalls ``dist`` as it is now, and whether it is that very build:
    the official wheel, our wheel of the current series, a wheel of that version in dist/,
    else (an older series whose wheel is gone) the official one."""
    if dist.version == line.version:
        return _wheel(project, line, undo=True), True
    if dist.version == local_version(project, line):
        return _wheel(project, line, undo=False), True
    name = WheelName.parse(line.wheel.filename).with_version(dist.version)
    if (project.dist / name).is_file():
        return project.dist / name, True
    return _wheel(project, line, undo=True), False


def _planned(
    project: Project, chosen: list[tuple[Installed, Line]], undo: bool
) -> tuple[list[Swap], list[Change]]:
    """Every wheel the run may need, the ones that undo it included, found (fetched,
    verified, built) before anything is changed; and the distributions already there."""
    swaps, unchanged = [], []
    for dist, line in chosen:
        target = line.version if undo else local_version(project, line)
        if dist.version == target:
            unchanged.append(Change(dist.name, dist.version, target, ""))
            continue
        previous, exact = _previous_wheel(project, line, dist)
        swaps.append(Swap(dist, line, target, _wheel(project, line, undo), previous, exact))
    return swaps, unchanged


def _pip_install(python: Path, wheel: Path) -> None:
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


def _swapped(python: Path, swaps: list[Swap], started: list[Swap]) -> None:
    """Install each swap's wheel, recording it in ``started`` before pip runs (a pip that
    fails mid-way may have removed the distribution already)."""
    for swap in swaps:
        started.append(swap)
        _pip_install(python, swap.wheel)


def _check_no_new_conflict(python: Path, before: frozenset[Conflict]) -> None:
    new = new_conflicts(before, pip_check(python))
    if new:
        raise EnvError(
            f"`pip check` in {python} reports what it did not before: {'; '.join(map(str, new))}"
        )


def _restored(python: Path, started: list[Swap]) -> tuple[str, bool]:
    """Put back what ``started`` replaced, last first: what the environment holds now, and
    whether that is exactly what it held before the run."""
    said, failed, exact = [], [], True
    for swap in reversed(started):
        try:
            _pip_install(python, swap.previous)
        except EnvError as error:
            failed.append(f"{swap.dist.name} ({error})")
            continue
        exact = exact and swap.exact
        said.append(
            f"{swap.dist.name} {swap.dist.version}"
            if swap.exact
            else f"{swap.dist.name} {swap.line.version} (the official release: the wheel of "
            f"the installed {swap.dist.version} is gone)"
        )
    parts = [f"put back {', '.join(said)}"] if said else ["nothing was changed"]
    if failed:
        parts.append(f"could NOT put back {'; '.join(failed)}")
    return "; ".join(parts), exact and not failed


def _failure_hint(python: Path, started: list[Swap], restored_exactly: bool) -> str:
    if restored_exactly:
        return (
            "the environment is as it was before this run; please report the failure "
            "(a patched wheel should install wherever its release does)"
        )
    wheels = " ".join(str(s.previous) for s in started)
    return (
        "check the environment; put back by hand what is missing: "
        f"{python} -m pip install --no-deps --force-reinstall {wheels}"
    )


def install(project: Project, python: Path, names: list[str], undo: bool = False) -> list[Change]:
    """Replace each named (default: each installed) distribution of ours in ``python``'s
    environment by our patched wheel of the same release, or by the official one (``undo``).

    Every wheel, the ones that would undo the run included, is at hand before pip runs. A
    failure (pip, or a ``pip check`` conflict the swap created) puts back what was replaced.

    :raises UsageError: not installed, or a release without a line (naming our lines).
    :raises EnvError: pip fails, or ``pip check`` reports a conflict it did not before; the
        message says what was put back.
    """
    installed = probe(python, list(distributions(project))).packages
    chosen, changes = _chosen(project, installed, names)
    swaps, unchanged = _planned(project, chosen, undo)
    before = pip_check(python)
    started: list[Swap] = []
    try:
        _swapped(python, swaps, started)
        _check_no_new_conflict(python, before)
    except FP4StackError as error:
        said, exactly = _restored(python, started)
        hint = _failure_hint(python, started, exactly)
        raise EnvError(f"{error}; {said}", hint=hint) from error
    done = [Change(s.dist.name, s.dist.version, s.target, str(s.wheel)) for s in swaps]
    order = [dist.name for dist, _ in chosen]
    return changes + sorted(unchanged + done, key=lambda c: order.index(c.distribution))
