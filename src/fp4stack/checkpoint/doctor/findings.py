"""What the doctor reports: findings with a severity and a one-line fix, and the verdicts
of the consumers that would load the checkpoint."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from fp4stack.core.formats import Profile

Severity = Literal["error", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = ("error", "warning", "info")
FIX = "fp4stack fix CHECKPOINT OUT"  # the command a finding's fix names for its repairs


@dataclass(frozen=True)
class Repair:
    """An exact repair ``fp4stack fix`` can make for a finding.

    :param kind: ``rename`` (tensor ``target`` -> ``new_name``), ``fp8-scale`` (bf16 values
        that are exact E4M3 back to F8_E4M3), ``e8m0-shift`` (MXFP4 scales moved by
        ``shift`` to standard E8M0, with ``partner`` the packed blocks), or ``index`` (the
        index rebuilt from the shards).
    """

    kind: Literal["rename", "fp8-scale", "e8m0-shift", "index"]
    target: str = ""
    new_name: str = ""
    partner: str = ""
    shift: int = 0


@dataclass(frozen=True)
class Finding:
    """One problem (or fact) about a checkpoint.

    :param code: a stable identifier scripts can match (``nvfp4-fix-bf16-scale``).
    :param where: the file or tensor at fault ('' for the checkpoint as a whole).
    :param fix: one line saying what to do about it.
    :param repairs: what ``fp4stack fix`` does about it, when it can do so exactly.
    :param refusal: set when a tempting repair is not exact, with the numbers.
    """

    severity: Severity
    code: str
    where: str
    message: str
    fix: str
    repairs: tuple[Repair, ...] = ()
    refusal: str = ""


@dataclass(frozen=True)
class ConsumerVerdict:
    """Whether one consumer (engine or library at a release) loads the checkpoint as is."""

    consumer: str
    verdict: Literal["loads", "needs-patch", "needs-fix", "does-not-load", "unknown"]
    detail: str
    patches: tuple[str, ...] = ()  # patches/<upstream>/<version>/<name>.patch of ours needed
    command: str = ""  # the command that gets the consumer there


@dataclass
class Report:
    """The doctor's whole answer for one checkpoint."""

    root: str
    formats: list[str]
    tensors: int
    quantized: int
    headers_only: bool
    findings: list[Finding] = field(default_factory=list)
    consumers: list[ConsumerVerdict] = field(default_factory=list)
    # what the checkpoint is in the vocabulary of patch headers (set once detected)
    profile: Profile | None = None

    def add(self, finding: Finding) -> None:
        self.findings.append(finding)

    def by_severity(self, severity: Severity) -> list[Finding]:
        return [f for f in self.findings if f.severity == severity]

    @property
    def healthy(self) -> bool:
        """No errors and no warnings (info findings are facts, not problems)."""
        return not any(f.severity in ("error", "warning") for f in self.findings)

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"healthy": self.healthy}
