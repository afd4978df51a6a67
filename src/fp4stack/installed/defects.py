"""``doctor --env``: for each installed upstream, whether it is ours, of which line and series,
and which of the known defects of its release (every patch of its line) its code has."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from fp4stack.build.wheel import LOCAL_LABEL, local_version
from fp4stack.installed import behaviour, fingerprint
from fp4stack.installed.probe import TORCH, Installed, probe
from fp4stack.stack.pins import Line, Project
from fp4stack.stack.series import parse_patch, series_paths


@dataclass(frozen=True)
class Defect:
    """One patch of the line, judged against the installed code."""

    patch: str  # patches/<upstream>/<version>/<name>.patch
    status: fingerprint.Status
    method: str  # "behaviour" or "fingerprint"
    detail: str


@dataclass
class PackageReport:
    distribution: str
    version: str
    line: str = ""  # the line of exactly this release, '' if none
    nearest: str = ""  # without a line: the line of the nearest release we have
    build: str = ""  # what the local version says: official, fp4stack <id> (current/other)
    defects: list[Defect] = field(default_factory=list)
    command: str = ""  # the command that fixes what is affected

    @property
    def affected(self) -> bool:
        return any(d.status == "affected" for d in self.defects)


@dataclass
class EnvReport:
    python: str
    python_version: str
    torch: str
    packages: list[PackageReport]
    missing: list[str] = field(default_factory=list)  # our distributions not installed

    @property
    def affected(self) -> bool:
        return any(p.affected for p in self.packages)

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"affected": self.affected}


def distributions(project: Project) -> dict[str, str]:
    """distribution name -> upstream, for every upstream with a line."""
    return {line.distribution: line.upstream for line in project.lines.values()}


def line_for(project: Project, upstream: str, public: str) -> Line | None:
    return next((ln for ln in project.lines_of(upstream) if ln.version == public), None)


def nearest_line(project: Project, upstream: str, public: str) -> Line | None:
    """The line whose release is closest to ``public``: the newest at or below it, else the
    oldest above it."""
    lines = project.lines_of(upstream)
    try:
        mine = Version(public)
    except InvalidVersion:
        return lines[-1] if lines else None
    below = [ln for ln in lines if Version(ln.version) <= mine]
    return below[-1] if below else (lines[0] if lines else None)


def _build(project: Project, line: Line | None, dist: Installed) -> str:
    label = dist.local
    if not label:
        return "official release (no local version)"
    if not label.startswith(f"{LOCAL_LABEL}."):
        return f"a local build ({label}), not fp4stack's"
    build_id = label.split(".", 1)[1]
    if line is None:
        return f"fp4stack build {build_id}, of a release we have no line for"
    current = local_version(project, line).split("+")[1].split(".", 1)[1]
    if build_id == current:
        return f"fp4stack build of {line.id}, series {build_id} (the current series)"
    return (
        f"fp4stack build of {line.id}, series {build_id} (not the current series "
        f"{current}: rebuild with `fp4stack install`)"
    )


def _defects(project: Project, line: Line, python: Path, dist: Installed) -> list[Defect]:
    patches = series_paths(project.patches(line))
    probes = {p.stem: probe for p in patches for probe in parse_patch(p).trailer(behaviour.PROBE)}
    probed = behaviour.run_probes(python, probes)
    prints = fingerprint.check_series(patches, line.package_root, dist)
    out = []
    for patch, (status, why) in zip(patches, prints, strict=True):
        rel = str(patch.relative_to(project.root))
        verdict = probed.get(patch.stem)
        if verdict is not None and verdict[0] is not None:
            state: fingerprint.Status = "affected" if verdict[0] else "fixed"
            out.append(Defect(rel, state, "behaviour", f"{verdict[1]}; {why}"))
        else:
            note = f"; {verdict[1]}" if verdict else ""
            out.append(Defect(rel, status, "fingerprint", why + note))
    return out


def check_env(project: Project, python: Path) -> EnvReport:
    """Probe ``python`` and judge every installed upstream of ours."""
    dists = distributions(project)
    env = probe(python, [*dists, TORCH])
    torch = env.packages.get(TORCH)
    report = EnvReport(str(python), env.python_version, torch.version if torch else "", [])
    for name, upstream in dists.items():
        dist = env.packages.get(name)
        if dist is None:
            report.missing.append(name)
            continue
        line = line_for(project, upstream, dist.public)
        pkg = PackageReport(name, dist.version, build=_build(project, line, dist))
        if line is None:
            near = nearest_line(project, upstream, dist.public)
            pkg.nearest = near.id if near else ""
        else:
            pkg.line = line.id
            pkg.defects = _defects(project, line, python, dist)
            if pkg.affected:
                pkg.command = f"fp4stack install --python {python} {name}"
        report.packages.append(pkg)
    return report
