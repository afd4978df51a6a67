"""Run pytest in a venv and read back what happened to each test."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fp4stack.core.errors import CommandError, TestRunError
from fp4stack.core.log import log
from fp4stack.core.runner import run

NO_TESTS_COLLECTED = 5
# No machine that runs these reaches the Hugging Face Hub: fail at once instead of retrying.
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
# Loaded into every pytest run, upstream venvs included; see its docstring.
SEED_PLUGIN_DIR = Path(__file__).parent / "pytest_plugin"
_OUTCOME = re.compile(r"^(PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS) (\S+)(?: - (.*))?")
_COUNT = re.compile(r"(\d+) (passed|failed|errors?|skipped|deselected|xfailed|xpassed)")


@dataclass
class PytestResult:
    """Per-test outcomes (from ``-rA``) and the closing line's counts."""

    returncode: int
    outcomes: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    summary: str = ""
    reasons: dict[str, str] = field(default_factory=dict)  # failed/errored id -> pytest's line
    output: str = ""  # pytest's stdout, for what the per-test lines do not say

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def count(self, key: str) -> int:
        return self.counts.get(key, 0)

    def failures(self) -> list[str]:
        """``FAILED <id> - <message>`` for each test that failed or errored."""
        return [f"{kind} {test}" + (f" - {self.reasons[test]}" if self.reasons.get(test) else "")
                for test, kind in self.outcomes.items() if kind in ("FAILED", "ERROR")]  # fmt: skip


def run_pytest(
    python: Path,
    args: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    echo: bool = True,
) -> PytestResult:
    """Run ``python -m pytest -rA args``; log its output live when ``echo``."""
    argv = [str(python), "-m", "pytest", "-rA", "-p", "no:cacheprovider", "-p", "fp4stack_seed"]
    argv += args
    extra = {**OFFLINE, **(env or {})}
    inherited = extra.get("PYTHONPATH", os.environ.get("PYTHONPATH", ""))
    search_path = [p for p in inherited.split(os.pathsep) if p]
    extra["PYTHONPATH"] = os.pathsep.join([*search_path, str(SEED_PLUGIN_DIR)])
    try:
        done = run(argv, cwd=cwd, env=extra, check=False, on_line=_echo if echo else None)
    except CommandError as error:
        raise TestRunError(f"cannot run pytest with {python}: {error}") from error
    result = PytestResult(done.returncode, output=done.stdout)
    _parse(done.stdout.splitlines(keepends=True), result)
    return result


def _echo(line: str) -> None:
    log(line, kind="output")


def _parse(lines: list[str], result: PytestResult) -> None:
    for line in lines:
        if match := _OUTCOME.match(line):
            result.outcomes[match.group(2)] = match.group(1)
            if match.group(1) in ("FAILED", "ERROR"):
                result.reasons[match.group(2)] = (match.group(3) or "").strip()
    closing = next((ln for ln in reversed(lines) if ln.startswith("=") and " in " in ln), "")
    result.summary = closing.strip("= \n")
    for number, key in _COUNT.findall(closing):
        result.counts["error" if key.startswith("error") else key] = int(number)
