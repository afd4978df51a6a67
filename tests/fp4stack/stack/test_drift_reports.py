"""The committed drift reports are what `fp4stack drift --report` writes from their JSON."""

from __future__ import annotations

from pathlib import Path

import pytest

from fp4stack.stack.drift_report import DriftReport, render_markdown

DRIFT_DOCS = Path(__file__).resolve().parents[3] / "docs" / "drift"
REPORTS = sorted(DRIFT_DOCS.glob("*.md"))


@pytest.mark.parametrize("report", REPORTS, ids=[p.stem for p in REPORTS])
def test_a_committed_report_is_the_tool_s_rendering_of_its_json(report: Path) -> None:
    data = report.with_suffix(".json")
    assert data.is_file(), f"{report.name}: no {data.name} beside it (written by --report)"
    drift = DriftReport.from_json(data.read_text())
    assert report.stem == drift.stem
    assert report.read_text() == render_markdown(drift), (
        f"{report.name} was edited by hand: regenerate it with "
        f"`fp4stack drift {drift.line} {drift.target.partition('@')[2]} --report`"
    )
