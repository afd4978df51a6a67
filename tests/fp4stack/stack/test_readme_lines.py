"""The README names every line we carry, with the wheel `make wheel` writes for it: the one
hand-written table left, so a new line (`fp4stack rebase`) that the README misses fails here
instead of going unnoticed."""

from __future__ import annotations

from pathlib import Path

import pytest

from fp4stack.build.wheel import LOCAL_LABEL, WheelName
from fp4stack.stack.pins import load_project

ROOT = Path(__file__).resolve().parents[3]
PROJECT = load_project(ROOT)
README = (ROOT / "README.md").read_text()


@pytest.mark.parametrize("line_id", sorted(PROJECT.lines))
def test_the_readme_lists_the_line_and_its_wheel(line_id):
    line = PROJECT.line(line_id)
    wheel = WheelName.parse(line.wheel.filename).with_version(f"{line.version}+{LOCAL_LABEL}.<id>")
    assert f"`{line.id}`" in README, f"README's Release lines do not name {line.id}"
    assert f"| `{wheel}` |" in README, f"README's wheel table has no row for {wheel}"
