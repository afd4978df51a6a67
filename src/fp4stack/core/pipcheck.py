"""``pip check`` read as conflicts, so a swap is judged by the conflicts it creates.

An environment may already be broken before ``fp4stack install`` touches it (llm-compressor
0.9.0.5 pins ``transformers<=4.57.3`` and 4.57.6 is installed). Swapping transformers for
our ``4.57.6+fp4stack.<id>`` changes the text of that line but not the conflict, so each
line is parsed into (distribution, requirement, what is installed) with every local version
label dropped (``+fp4stack.<id>``, ``+cpu``), and only conflicts not there before count.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from fp4stack.core.runner import run

NOTHING_BROKEN = "No broken requirements found."
NOT_INSTALLED = "not installed"
UNSUPPORTED = "not supported on this platform"

# The three lines pip's `check` writes (pip/_internal/commands/check.py).
_MISSING = re.compile(
    r"^(?P<dist>\S+) (?P<version>\S+) requires (?P<req>.+), which is not installed\.$"
)
_CONFLICTING = re.compile(
    r"^(?P<dist>\S+) (?P<version>\S+) has requirement (?P<req>.+), "
    r"but you have (?P<have>\S+) (?P<have_version>\S+)\.$"
)
_UNSUPPORTED = re.compile(r"^(?P<dist>\S+) (?P<version>\S+) is not supported on this platform\.?$")
# A version followed by a local label, anywhere in a line pip check writes in another form.
_LOCAL_LABEL = re.compile(r"(?<=\d)\+[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*")


@dataclass(frozen=True)
class Conflict:
    """One line of ``pip check``; equal when it names the same conflict, whatever local
    labels the versions in it carry."""

    distribution: str  # "<name> <public version>" of the distribution whose requirement fails
    requirement: str  # the requirement as pip wrote it ('' for an unsupported platform)
    installed: str  # "<name> <public version>", NOT_INSTALLED or UNSUPPORTED
    text: str = field(default="", compare=False)  # the line as pip wrote it

    def __str__(self) -> str:
        return self.text or f"{self.distribution}: {self.requirement} ({self.installed})"


def public_version(version: str) -> str:
    """``version`` without its local label: ``4.57.6+fp4stack.0a1b`` -> ``4.57.6``."""
    return version.split("+", 1)[0]


def _named(name: str, version: str) -> str:
    return f"{name.lower()} {public_version(version)}"


def parse_line(line: str) -> Conflict:
    """The conflict one line of ``pip check`` names; a line in no form we know is kept as
    its text, local labels dropped."""
    text = line.strip()
    if match := _CONFLICTING.match(text):
        installed = _named(match["have"], match["have_version"])
        return Conflict(_named(match["dist"], match["version"]), match["req"], installed, text)
    if match := _MISSING.match(text):
        return Conflict(_named(match["dist"], match["version"]), match["req"], NOT_INSTALLED, text)
    if match := _UNSUPPORTED.match(text):
        return Conflict(_named(match["dist"], match["version"]), "", UNSUPPORTED, text)
    return Conflict(_LOCAL_LABEL.sub("", text), "", "", text)


def parse(output: str) -> frozenset[Conflict]:
    """Every conflict in the output of ``pip check``."""
    lines = (ln.strip() for ln in output.splitlines())
    return frozenset(parse_line(ln) for ln in lines if ln and ln != NOTHING_BROKEN)


def new_conflicts(before: Iterable[Conflict], after: Iterable[Conflict]) -> list[Conflict]:
    """The conflicts in ``after`` that ``before`` did not have, in pip's order of text."""
    return sorted(set(after) - set(before), key=str)


def pip_check(python: Path) -> frozenset[Conflict]:
    """The conflicts ``python -m pip check`` reports in ``python``'s environment."""
    result = run([python, "-m", "pip", "check", "--disable-pip-version-check"], check=False)
    return parse(result.stdout)
