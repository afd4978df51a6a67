"""pip's own configuration, as ``pip download`` (or ``pip install``) would see it.

pip merges its config files and ``PIP_*`` variables itself; ``pip config list`` prints that
merge as ``<section>.<key>=<repr>`` lines, where section ``:env:`` holds the variables. A
``pip download`` takes each key from ``:env:`` over ``[download]`` over ``[global]`` (pip's
documented override order; ``pip install`` reads ``[install]`` instead), splits list options
on blanks, and reads booleans as strtobool. Only the settings that decide where files come
from, how they are fetched, and which versions are allowed (constraints) are kept.
"""

from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass

from fp4stack.core.errors import SourceError
from fp4stack.core.runner import run

PYPI = "https://pypi.org/simple"
COMMANDS = ("download", "install")
_LINE = re.compile(r"^(?P<section>[^.\s=]+)\.(?P<key>[A-Za-z0-9_-]+)=(?P<value>.*)$")
_ALIASES = {"default-timeout": "timeout"}
_FIELDS = {
    "index-url": "index_url",
    "extra-index-url": "extra_index_urls",
    "no-index": "no_index",
    "find-links": "find_links",
    "cert": "cert",
    "client-cert": "client_cert",
    "proxy": "proxy",
    "trusted-host": "trusted_hosts",
    "timeout": "timeout",
    "retries": "retries",
    "keyring-provider": "keyring_provider",
    "constraint": "constraints",
}
_LISTS = {"extra-index-url", "find-links", "trusted-host", "constraint"}
_TRUE = {"y", "yes", "t", "true", "on", "1"}
_FALSE = {"n", "no", "f", "false", "off", "0"}


@dataclass(frozen=True)
class PipSettings:
    """The network settings of pip that locating and downloading a file depends on."""

    index_url: str = PYPI
    extra_index_urls: tuple[str, ...] = ()
    no_index: bool = False
    find_links: tuple[str, ...] = ()
    cert: str | None = None
    client_cert: str | None = None
    proxy: str | None = None
    trusted_hosts: tuple[str, ...] = ()
    timeout: float = 15.0
    retries: int = 5
    keyring_provider: str = "auto"  # only "disabled" is told apart: unearth picks the rest
    constraints: tuple[str, ...] = ()  # constraint files (pip's cap on what it installs)

    @property
    def index_urls(self) -> tuple[str, ...]:
        """The indexes to search, main first; none under ``no-index``."""
        return () if self.no_index else (self.index_url, *self.extra_index_urls)


def pip_settings(command: str = "download") -> PipSettings:
    """This process's pip configuration for ``pip <command>``, read by ``pip config list``."""
    result = run([sys.executable, "-m", "pip", "config", "list"], check=False)
    if result.returncode != 0:
        tail = " / ".join(result.stdout.strip().splitlines()[-3:])
        raise SourceError(
            f"cannot read pip's configuration: `pip config list` exited {result.returncode}: "
            + tail,
            hint="run `python -m pip config list` to see what pip objects to",
        )
    return parse_config_list(result.stdout, command)


def parse_config_list(text: str, command: str = "download") -> PipSettings:
    """The settings from ``pip config list`` output; unrelated lines and keys are ignored."""
    if command not in COMMANDS:
        raise ValueError(f"no pip settings for {command!r}: one of {', '.join(COMMANDS)}")
    sections = ("global", command, ":env:")
    merged: dict[str, str] = {}
    by_section: dict[str, dict[str, str]] = {section: {} for section in sections}
    for line in text.splitlines():
        match = _LINE.match(line.strip())
        if not match or match["section"] not in by_section:
            continue
        key = match["key"].lower().replace("_", "-")
        by_section[match["section"]][_ALIASES.get(key, key)] = _unquote(match["value"])
    for section in sections:
        merged.update({key: value for key, value in by_section[section].items() if value})
    return _settings(merged)


def _unquote(value: str) -> str:
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value
    return parsed if isinstance(parsed, str) else value


def _settings(values: dict[str, str]) -> PipSettings:
    kwargs = {_FIELDS[key]: _convert(key, value) for key, value in values.items() if key in _FIELDS}
    return PipSettings(**kwargs)  # type: ignore[arg-type]


def _convert(key: str, value: str) -> object:
    if key in _LISTS:
        return tuple(value.split())
    if key == "no-index":
        return _boolean(key, value)
    try:
        if key == "timeout":
            return float(value)
        if key == "retries":
            return int(value)
    except ValueError:
        raise _bad(key, value) from None
    return value


def _boolean(key: str, value: str) -> bool:
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise _bad(key, value)


def _bad(key: str, value: str) -> SourceError:
    return SourceError(
        f"pip's configuration sets {key} to {value!r}, which pip does not accept either",
        hint="fix it where `python -m pip config debug` says it is set",
    )
