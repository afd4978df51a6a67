"""Where things live in an fp4stack checkout, and the pinned upstreams it declares."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from fp4stack.core.errors import UsageError

PINS = Path("upstream") / "pins.toml"


@dataclass(frozen=True)
class Artifact:
    """One exact file on PyPI."""

    filename: str
    sha256: str


@dataclass(frozen=True)
class EnvSpec:
    """What an upstream's test venv holds besides the patched wheel."""

    torch: str
    requires: tuple[str, ...]
    remove: tuple[str, ...]
    # installed with --no-deps once `pip check` has passed: companions whose own pins
    # are knowingly not met (their runtime imports belong in `requires`)
    requires_no_deps: tuple[str, ...] = ()


@dataclass(frozen=True)
class TestSpec:
    """Upstream's own tests: paths inside the source tree (or the submodule)."""

    paths: tuple[str, ...]
    from_submodule: bool = False
    args: tuple[str, ...] = ()


@dataclass(frozen=True)
class Upstream:
    """One pinned upstream, as declared in ``upstream/pins.toml``."""

    id: str
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

    @property
    def source_artifact(self) -> Artifact:
        """The artifact whose contents are the tree the series applies to."""
        return self.sdist if self.source == "sdist" and self.sdist else self.wheel

    @property
    def tests_dir_name(self) -> str:
        """Our tests for this upstream live in ``tests/<this>``."""
        return self.id.replace("-", "_")


@dataclass(frozen=True)
class Project:
    """An fp4stack checkout: its root, its pins and its build directories."""

    root: Path
    upstreams: dict[str, Upstream] = field(default_factory=dict)

    @cached_property
    def build(self) -> Path:
        return self.root / "build"

    @cached_property
    def cache(self) -> Path:
        return self.build / "cache"

    @cached_property
    def dist(self) -> Path:
        return self.root / "dist"

    def src(self, upstream: Upstream) -> Path:
        return self.build / "src" / upstream.id

    def patches(self, upstream: Upstream) -> Path:
        return self.root / "patches" / upstream.id

    def venv(self, name: str) -> Path:
        return self.build / "venv" / name

    def select(self, names: list[str] | None) -> list[Upstream]:
        """The named upstreams in pin order, or all of them; unknown names are an error."""
        if not names:
            return list(self.upstreams.values())
        unknown = [n for n in names if n not in self.upstreams]
        if unknown:
            known = ", ".join(self.upstreams)
            raise UsageError(f"unknown upstream {', '.join(unknown)} (pinned: {known})")
        return [self.upstreams[n] for n in names]


def find_root(start: Path | None = None) -> Path:
    """The nearest directory at or above ``start`` holding ``upstream/pins.toml``."""
    env_root = os.environ.get("FP4STACK_ROOT")
    here = Path(env_root) if env_root else (start or Path.cwd())
    for candidate in [here, *here.resolve().parents]:
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
    upstreams = {uid: _upstream(uid, table, path) for uid, table in tables.items()}
    return Project(root=root, upstreams=upstreams)


SOURCES = ("sdist", "wheel")


def _upstream(uid: str, table: dict[str, Any], path: Path) -> Upstream:
    if table.get("source") not in SOURCES:
        raise UsageError(
            f"{path}: [{uid}] source = {table.get('source')!r}; "
            f"expected one of {', '.join(SOURCES)}"
        )
    try:
        env, tests = table["env"], table.get("tests", {})
        sdist = table.get("sdist")
        return Upstream(
            id=uid,
            git=table["git"],
            tag=table["tag"],
            commit=table["commit"],
            submodule=table["submodule"],
            distribution=table["distribution"],
            version=table["version"],
            source=table["source"],
            package_root=table.get("package_root", ""),
            wheel=Artifact(**table["wheel"]),
            sdist=Artifact(**sdist) if sdist else None,
            env=EnvSpec(
                env["torch"],
                tuple(env.get("requires", ())),
                tuple(env.get("remove", ())),
                tuple(env.get("requires_no_deps", ())),
            ),
            tests=TestSpec(
                tuple(tests.get("paths", ())),
                bool(tests.get("from_submodule")),
                tuple(tests.get("args", ())),
            ),
        )
    except (KeyError, TypeError) as error:
        raise UsageError(f"{path}: [{uid}] is missing or has a malformed key: {error}") from None
