"""Where things live in an fp4stack checkout, and the release lines it declares.

A *line* is one upstream at one release: ``vllm@0.28.0``. ``upstream/pins.toml`` has one
table per upstream with what its lines share (git, submodule, distribution, source,
package_root) and one ``[<upstream>.lines."<version>"]`` table per line with the rest (tag,
commit, artifacts, env, tests). A line may override any shared key.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from packaging.requirements import InvalidRequirement, Requirement
from packaging.version import InvalidVersion, Version

from fp4stack.core.errors import UsageError
from fp4stack.core.formats import ClaimError, parse_claim

PINS = Path("upstream") / "pins.toml"
LINE_SEPARATOR = "@"
# Tests that must branch on the release they run against read it from this variable.
LINE_ENV = "FP4STACK_LINE"


@dataclass(frozen=True)
class Artifact:
    """One exact file on PyPI."""

    filename: str
    sha256: str


@dataclass(frozen=True)
class EnvSpec:
    """What a line's test venv holds besides the patched wheel."""

    torch: str
    requires: tuple[str, ...]
    remove: tuple[str, ...]
    # installed with --no-deps once `pip check` has passed: companions whose own pins
    # are knowingly not met (their runtime imports belong in `requires`)
    requires_no_deps: tuple[str, ...] = ()
    # other upstreams whose patched wheels are installed beside this one's (with it, before
    # `pip check`): e.g. transformers' loader tested with our compressed-tensors
    wheels_from: tuple[str, ...] = ()
    # pins that replace what the packages themselves require (uv's --override), for a pin
    # the index cannot serve; `pip check` is then held to every requirement but these
    overrides: tuple[str, ...] = ()


@dataclass(frozen=True)
class TestSpec:
    """Upstream's own tests: paths inside the source tree (or the submodule)."""

    paths: tuple[str, ...]
    from_submodule: bool = False
    args: tuple[str, ...] = ()


@dataclass(frozen=True)
class Line:
    """One upstream at one release, as declared in ``upstream/pins.toml``."""

    upstream: str
    git: str
    tag: str
    commit: str
    submodule: str
    distribution: str
    version: str
    source: Literal["sdist", "wheel"]
    package_root: str
    wheel: Artifact
    sdist: Artifact | None
    env: EnvSpec
    tests: TestSpec
    # as a consumer: the checkpoint formats it reads (claims, see core.formats), and those
    # of them this release cannot read at all (claim -> why)
    reads: tuple[str, ...] = ()
    unsupported: tuple[tuple[str, str], ...] = ()
    # how long its test job takes on a 2-core machine: the longest jobs start first
    test_minutes: float = 1.0
    # the upstream wants commits signed off (`git am --signoff`, `git commit -s`)
    signed_off: bool = False

    @property
    def id(self) -> str:
        """``<upstream>@<version>``: names the line on the command line and under build/."""
        return f"{self.upstream}{LINE_SEPARATOR}{self.version}"

    @property
    def source_artifact(self) -> Artifact:
        """The artifact whose contents are the tree the series applies to."""
        return self.sdist if self.source == "sdist" and self.sdist else self.wheel

    @property
    def tests_dir_name(self) -> str:
        """Our tests for this upstream live in ``tests/<this>``, shared by its lines."""
        return self.upstream.replace("-", "_")

    @property
    def patch_dir(self) -> Path:
        """``patches/<upstream>/<version>``, relative to the checkout root."""
        return Path("patches") / self.upstream / self.version


@dataclass(frozen=True)
class Project:
    """An fp4stack checkout: its root, its lines and its build directories."""

    root: Path
    lines: dict[str, Line] = field(default_factory=dict)

    @cached_property
    def build(self) -> Path:
        return self.root / "build"

    @cached_property
    def cache(self) -> Path:
        return self.build / "cache"

    @cached_property
    def dist(self) -> Path:
        return self.root / "dist"

    @property
    def upstreams(self) -> list[str]:
        """Upstream names in pin order."""
        return list(dict.fromkeys(line.upstream for line in self.lines.values()))

    def src(self, line: Line) -> Path:
        return self.build / "src" / line.id

    def patches(self, line: Line) -> Path:
        return self.root / line.patch_dir

    def ci_list(self, kind: Literal["select", "deselect"], line: Line) -> Path:
        """``ci/<kind>/<upstream>/<version>.txt``: the line's upstream tests run or set aside."""
        return self.root / "ci" / kind / line.upstream / f"{line.version}.txt"

    def venv(self, name: str) -> Path:
        return self.build / "venv" / name

    def lines_of(self, upstream: str) -> list[Line]:
        """The lines of ``upstream``, oldest release first."""
        return sorted((ln for ln in self.lines.values() if ln.upstream == upstream),
                      key=lambda ln: Version(ln.version))  # fmt: skip

    def newest(self, upstream: str) -> Line:
        """The line at the newest release of ``upstream``."""
        return self.lines_of(upstream)[-1]

    def line(self, name: str) -> Line:
        """The line ``<upstream>@<version>``; an unknown one is a UsageError naming ours."""
        if name in self.lines:
            return self.lines[name]
        raise UsageError(f"unknown line {name} (lines: {', '.join(self.lines)})")

    def select(self, names: list[str] | None) -> list[Line]:
        """Lines by id, or every line of an upstream named bare; all lines when none named.

        Pin order, oldest release first within an upstream; unknown names are an error.
        """
        if not names:
            return [ln for up in self.upstreams for ln in self.lines_of(up)]
        unknown = [n for n in names if n not in self.lines and n not in self.upstreams]
        if unknown:
            raise UsageError(
                f"unknown line {', '.join(unknown)} (lines: {', '.join(self.lines)}; "
                "a bare upstream name means all of its lines)"
            )
        chosen: list[Line] = []
        for name in names:
            for line in self.lines_of(name) if name in self.upstreams else [self.lines[name]]:
                if line not in chosen:
                    chosen.append(line)
        return chosen


def find_root(start: Path | None = None) -> Path:
    """The nearest directory at or above ``start`` (``$FP4STACK_ROOT``, else the cwd) holding
    ``upstream/pins.toml``; without ``$FP4STACK_ROOT``, else the checkout fp4stack was
    installed from in editable mode."""
    env_root = os.environ.get("FP4STACK_ROOT")
    here = Path(env_root) if env_root else (start or Path.cwd())
    candidates = [here, *here.resolve().parents]
    if not env_root:  # last, the checkout fp4stack runs from (editable, as `make` installs it)
        candidates.append(Path(__file__).resolve().parents[3])
    for candidate in candidates:
        if (candidate / PINS).is_file():
            return candidate.resolve()
    raise UsageError(
        f"no {PINS} found at or above {here}", hint="run fp4stack inside an fp4stack checkout"
    )


_PINS_HINT = (
    "restore it with `git checkout upstream/pins.toml`, or fix it (its header says each key)"
)


def load_project(root: Path | None = None) -> Project:
    """Read the pins of the checkout at ``root`` (found from the cwd by default)."""
    root = root or find_root()
    path = root / PINS
    try:
        tables = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise UsageError(f"{path}: not valid TOML: {error}", hint=_PINS_HINT) from error
    except OSError as error:
        raise UsageError(f"{path}: cannot read: {error.strerror}", hint=_PINS_HINT) from error
    lines: dict[str, Line] = {}
    for name, table in tables.items():
        for line in _lines(name, table, path):
            lines[line.id] = line
    for line in lines.values():
        unknown = [n for n in line.env.wheels_from if n not in lines or n == line.id]
        if unknown:
            raise UsageError(
                f'{path}: [{line.upstream}.lines."{line.version}".env] wheels_from names '
                f"{', '.join(unknown)}, not another pinned line (lines: {', '.join(lines)})",
                hint=_PINS_HINT,
            )
    return Project(root=root, lines=lines)


SOURCES = ("sdist", "wheel")
# Keys a line must have (after merging its upstream's shared keys).
_LINE_KEYS = ("git", "tag", "commit", "submodule", "distribution", "source", "wheel", "env")


def _lines(name: str, table: dict[str, Any], path: Path) -> list[Line]:
    line_tables = table.get("lines")
    if not isinstance(line_tables, dict) or not line_tables:
        raise UsageError(f'{path}: [{name}] has no [{name}.lines."<version>"] table',
                         hint=_PINS_HINT)  # fmt: skip
    shared = {k: v for k, v in table.items() if k != "lines"}
    return [_line(name, version, {**shared, **lt}, path) for version, lt in line_tables.items()]


def _line(name: str, version: str, table: dict[str, Any], path: Path) -> Line:
    where = f'{path}: [{name}.lines."{version}"]'
    try:
        Version(version)
    except InvalidVersion:
        raise UsageError(f"{where}: {version!r} is not a release version") from None
    if table.get("source") not in SOURCES:
        raise UsageError(
            f"{where}: source = {table.get('source')!r}; expected one of {', '.join(SOURCES)}"
        )
    if missing := [k for k in _LINE_KEYS if k not in table]:
        raise UsageError(f"{where}: missing {', '.join(missing)}", hint=_PINS_HINT)
    try:
        env, tests = table["env"], table.get("tests", {})
        sdist = table.get("sdist")
        return Line(
            upstream=name,
            git=table["git"],
            tag=table["tag"],
            commit=table["commit"],
            submodule=table["submodule"],
            distribution=table["distribution"],
            version=version,
            source=table["source"],
            package_root=table.get("package_root", ""),
            wheel=Artifact(**table["wheel"]),
            sdist=Artifact(**sdist) if sdist else None,
            env=EnvSpec(
                env["torch"],
                tuple(env.get("requires", ())),
                tuple(env.get("remove", ())),
                tuple(env.get("requires_no_deps", ())),
                tuple(env.get("wheels_from", ())),
                _requirements(where, "env.overrides", env.get("overrides", [])),
            ),
            tests=TestSpec(
                tuple(tests.get("paths", ())),
                bool(tests.get("from_submodule")),
                tuple(tests.get("args", ())),
            ),
            reads=_claims(where, "reads", table.get("reads", [])),
            unsupported=_unsupported(where, table.get("unsupported", {})),
            test_minutes=float(table.get("test_minutes", 1.0)),
            signed_off=bool(table.get("signed_off", False)),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise UsageError(f"{where}: missing or malformed key: {error}") from None


def _requirements(where: str, key: str, values: object) -> tuple[str, ...]:
    return _checked_strings(where, key, values, "requirements", Requirement, InvalidRequirement)


def _claims(where: str, key: str, values: object) -> tuple[str, ...]:
    return _checked_strings(where, key, values, "formats", parse_claim, ClaimError)


def _checked_strings(
    where: str,
    key: str,
    values: object,
    what: str,
    parse: Callable[[str], object],
    error_type: type[Exception],
) -> tuple[str, ...]:
    """``values``, a list of strings each of which ``parse`` accepts."""
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise UsageError(f"{where}: {key} must be a list of {what}", hint=_PINS_HINT)
    for value in values:
        try:
            parse(value)
        except error_type as error:
            raise UsageError(f"{where}: {key}: {value!r}: {error}", hint=_PINS_HINT) from None
    return tuple(values)


def _unsupported(where: str, table: object) -> tuple[tuple[str, str], ...]:
    if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
        raise UsageError(f"{where}: unsupported must map a claim to why", hint=_PINS_HINT)
    _claims(where, "unsupported", list(table))
    return tuple(table.items())
