"""What a patch concerns, from its ``Affects:`` trailers, and what each line does with a
checkpoint: loads it, needs one of its patches, or does not load it.

Each patch says, in the vocabulary of :mod:`fp4stack.core.formats`, which checkpoints it
makes loadable or correct (``Affects: modelopt-nvfp4 arch=gpt_oss``), or ``Affects: none
[why]`` when it changes nothing a consumer loads (a producer's export, packaging metadata).
Which formats an upstream reads, and which of them a line cannot read at all, are written
with the upstream and the line in ``upstream/pins.toml`` (``reads``, ``unsupported``). From
these, :func:`line_verdicts` answers for every line we carry; adding a line or a patch
changes the answer with no code change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from fp4stack.core.formats import NONE, Claim, ClaimError, Profile, parse_claim
from fp4stack.stack.pins import Line, Project
from fp4stack.stack.series import PatchInfo, parse_patch, series_paths

AFFECTS = "Affects"
_NONE = re.compile(rf"^{NONE} \[(.+)\]$")

Verdict = Literal["loads", "needs-patch", "does-not-load"]


@dataclass(frozen=True)
class PatchClaim:
    """One patch of a line and what it says it fixes."""

    path: str  # patches/<upstream>/<version>/<name>.patch, relative to the checkout
    subject: str
    claims: tuple[Claim, ...]  # empty for ``Affects: none``


@dataclass(frozen=True)
class LineVerdict:
    """What one line of a consumer upstream does with a checkpoint, as released."""

    line: str  # <upstream>@<version>
    consumer: str  # "<upstream> <version>"
    verdict: Verdict
    detail: str
    patches: tuple[str, ...] = ()  # the line's patches the checkpoint needs
    command: str = ""  # what gets the consumer there


def claims(info: PatchInfo) -> tuple[Claim, ...]:
    """The patch's claims; () for ``Affects: none [why]``. :raises ClaimError: bad trailer."""
    values = info.trailer(AFFECTS)
    if not values:
        raise ClaimError(f"no `{AFFECTS}:` trailer")
    if any(v == NONE or v.startswith(f"{NONE} ") for v in values):
        if len(values) > 1 or not _NONE.match(values[0]):
            raise ClaimError(f"`{AFFECTS}: {NONE} [why]` stands alone and says why")
        return ()
    return tuple(parse_claim(v) for v in values)


def lint_affects(info: PatchInfo) -> list[str]:
    """Problems with the patch's ``Affects:`` trailers (see docs/stack.md)."""
    try:
        claims(info)
    except ClaimError as error:
        return [f"{AFFECTS}: {error} (see docs/stack.md#what-a-patch-affects)"]
    return []


def patch_claims(project: Project, line: Line) -> list[PatchClaim]:
    """Every patch of the line's series with its claims, in series order."""
    out = []
    for path in series_paths(project.patches(line)):
        info = parse_patch(path)
        rel = str(path.relative_to(project.root))
        try:
            found = claims(info)
        except ClaimError:
            found = ()  # `make lint` reports it; the doctor should still answer
        out.append(PatchClaim(rel, info.subject, found))
    return out


def line_verdicts(project: Project, profile: Profile) -> list[LineVerdict]:
    """For every line of every upstream that reads one of ``profile``'s formats, oldest
    release first: ``does-not-load`` (the line's ``unsupported`` says why), ``needs-patch``
    (the line's patches whose claims match), or ``loads``."""
    out = []
    for upstream in project.upstreams:
        for line in project.lines_of(upstream):
            if any(f in profile.formats for f in line.reads):
                out.append(_verdict(project, line, profile))
    return out


def _verdict(project: Project, line: Line, profile: Profile) -> LineVerdict:
    consumer = f"{line.upstream} {line.version}"
    for text, why in line.unsupported:
        if parse_claim(text).matches(profile):
            return LineVerdict(line.id, consumer, "does-not-load", why)
    needed = [(p, c) for p in patch_claims(project, line) for c in p.claims if c.matches(profile)]
    if not needed:
        read = [f for f in profile.formats if f in line.reads]
        return LineVerdict(line.id, consumer, "loads", f"reads {', '.join(read)} as released")
    paths = tuple(dict.fromkeys(p.path for p, _ in needed))
    # one entry per patch: its subject, with the load conditions of the claims that matched
    # (none when one of them holds whatever the load)
    conditions: dict[str, list[str]] = {}
    for p, c in needed:
        conditions.setdefault(p.subject, []).append(c.when())
    detail = "; ".join(
        subject if "" in whens else f"{subject} ({', '.join(dict.fromkeys(whens))})"
        for subject, whens in conditions.items()
    )
    command = f"fp4stack install {line.upstream}"
    return LineVerdict(line.id, consumer, "needs-patch", detail, paths, command)
