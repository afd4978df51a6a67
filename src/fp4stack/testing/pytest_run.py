"""Run pytest in a venv and read back what happened to each test."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fp4stack.core.log import log

NO_TESTS_COLLECTED = 5
# No machine that runs these reaches the Hugging Face Hub: fail at once instead of retrying.
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
# Loaded into every pytest run, upstream venvs included; see its docstring.
SEED_PLUGIN_DIR = Path(__file__).parent / "pytest_plugin"
_OUTCOME = re.compile(r"^(PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS) (\S+)")
_COUNT = re.compile(r"(\d+) (passed|failed|errors?|skipped|deselected|xfailed|xpassed)")


@dataclass
class PytestResult:
    """Per-test outcomes (from ``-rA``) and the closing line's counts."""

    returncode: int
    outcomes: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    summary: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def count(self, key: str) -> int:
        return self.counts.get(key, 0)


def run_pytest(
    python: Path,
    args: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    echo: bool = True,
) -> PytestResult:
    """Run ``python -m pytest -rA args``; echo its output live when ``echo``."""
    argv = [str(python), "-m", "pytest", "-rA", "-p", "no:cacheprovider", "-p", "fp4stack_seed"]
    argv += args
    log(" ".join(argv), kind="cmd")
    full_env = {**os.environ, **OFFLINE, **(env or {})}
    search_path = [p for p in full_env.get("PYTHONPATH", "").split(os.pathsep) if p]
    full_env["PYTHONPATH"] = os.pathsep.join([*search_path, str(SEED_PLUGIN_DIR)])
    process = subprocess.Popen(
        argv, cwd=cwd, env=full_env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line)
        if echo:
            sys.stderr.write(line)
    result = PytestResult(process.wait())
    _parse(lines, result)
    return result


def _parse(lines: list[str], result: PytestResult) -> None:
    for line in lines:
        if match := _OUTCOME.match(line):
            result.outcomes[match.group(2)] = match.group(1)
    closing = next((ln for ln in reversed(lines) if ln.startswith("=") and " in " in ln), "")
    result.summary = closing.strip("= \n")
    for number, key in _COUNT.findall(closing):
        result.counts["error" if key.startswith("error") else key] = int(number)
