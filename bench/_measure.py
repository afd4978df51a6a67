"""Run a command under GNU time and return its wall time and peak RSS."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from pathlib import Path


def measure(argv: Sequence[str], cwd: Path | None = None) -> tuple[float, float]:
    """Wall seconds and peak resident memory (MiB) of ``argv`` (which must succeed)."""
    result = subprocess.run(["/usr/bin/time", "-v", *argv], cwd=cwd, capture_output=True,
                            text=True, check=False)  # fmt: skip
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{result.stdout}\n{result.stderr}")
    wall = re.search(r"Elapsed \(wall clock\) time .*: (?:(\d+):)?(\d+):([\d.]+)", result.stderr)
    assert wall, result.stderr
    hours, minutes, seconds = wall.groups()
    elapsed = int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr)
    assert rss, result.stderr
    return elapsed, int(rss.group(1)) / 1024


def median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]
