"""Behaviour probes: small programs that exercise a defect on CPU, run in the target interpreter.

Which patch is decided how is said by the patch: one whose header names a probe
(``Probe: <module>``) is decided by running that module of :mod:`fp4stack.installed.probes`,
which prints ``{"affected": bool, "detail": str}``; every other patch by its code fingerprint
(:mod:`fingerprint`), which is what a defect that needs a GPU to show gets. The probes of one
environment run in one process (``probes/_runner.py``), which imports torch once.
"""

from __future__ import annotations

import json
from pathlib import Path

from fp4stack.core.errors import CommandError
from fp4stack.core.runner import run

_PROBES = Path(__file__).resolve().parent / "probes"
_RUNNER = _PROBES / "_runner.py"

# A patch is decided by behaviour when its header names a probe, ``Probe: <module>`` (the
# module's name in probes/, without .py); a test checks every such name has its module.
PROBE = "Probe"


def probe_path(probe: str) -> Path:
    """The program of the probe named ``probe`` (a module of probes/)."""
    return _PROBES / f"{probe}.py"


def known_probes() -> list[str]:
    """The names of every probe program there is."""
    return sorted(p.stem for p in _PROBES.glob("*.py") if not p.stem.startswith("_"))


def run_probes(python: Path, probes: dict[str, str]) -> dict[str, tuple[bool | None, str]]:
    """Run ``probes`` (key -> probe name) in ``python`` (one process): key -> (affected, detail);
    affected is None when the probe itself could not run (the fingerprint decides then)."""
    chosen = {key: probe_path(probe) for key, probe in probes.items()}
    if not chosen:
        return {}
    try:  # binary: stdout (the verdicts) apart from stderr (warnings, a traceback)
        result = run([python, _RUNNER, *chosen.values()], binary=True, check=False)
    except CommandError as error:
        return dict.fromkeys(chosen, (None, f"probe could not start: {error}"))
    lines = result.data.decode(errors="replace").strip().splitlines()
    try:
        data = json.loads(lines[-1])
    except (IndexError, ValueError):
        data = None
    if not isinstance(data, dict):
        said = result.stdout.strip().splitlines() or lines  # stderr first, with binary=True
        tail = said[-1:] or [f"exit {result.returncode}"]
        return dict.fromkeys(chosen, (None, f"probe process failed: {tail[0]}"))
    return {name: _verdict(data.get(str(path))) for name, path in chosen.items()}


def _verdict(entry: object) -> tuple[bool | None, str]:
    """A probe's ``{"affected", "detail"}``, or why there is none (the runner's ``error``)."""
    if not isinstance(entry, dict):
        return None, "probe gave no result"
    affected, detail = entry.get("affected"), entry.get("detail")
    if isinstance(affected, bool) and isinstance(detail, str):
        return affected, detail
    error = entry.get("error") or f"it printed {entry}"
    return None, f"probe could not run: {error}"
