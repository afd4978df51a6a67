"""Behaviour probes: small programs that exercise a defect on CPU, run in the target interpreter.

The one table of which patch is decided how: a patch listed in :data:`PROBES` is decided by
running its probe, a module of :mod:`fp4stack.installed.probes` that prints
``{"affected": bool, "detail": str}``; every other patch by its code fingerprint
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

# patch name (without .patch) -> its probe module in probes/; keys are checked against the
# series by a test.
PROBES: dict[str, str] = {
    name: name.replace("-", "_")
    for name in (
        # compressed-tensors 0.13.0 wrote MXFP4 scales as E8M0 with bias 125.
        "store-mxfp4-scales-as-standard-e8m0-bias-127",
        # fp8 tensors take no part in type promotion: upcast the NVFP4 group scale first.
        "do-arithmetic-on-fp8-scales-in-a-non-fp8-dtype",
        # transformers compresses the empty model on the meta device.
        "pack-nvfp4-weights-on-the-meta-device-without-torch-compile",
        # NVFP4 weights decompress into the dtype the model was loaded in.
        "decompress-weights-into-the-dtype-the-model-was-loaded-in",
    )
}


def probe_path(patch_name: str) -> Path | None:
    """The probe program of the patch ``patch_name``; None when its fingerprint decides."""
    module = PROBES.get(patch_name)
    return _PROBES / f"{module}.py" if module else None


def run_probes(python: Path, names: list[str]) -> dict[str, tuple[bool | None, str]]:
    """Run the probes of ``names`` in ``python`` (one process); True means affected, None
    means the probe itself could not run (the fingerprint decides then)."""
    chosen = {name: path for name in names if (path := probe_path(name)) is not None}
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
