"""``drift``: a line's patches against another release of its upstream, by behaviour first.

The text (``stack.drift_text``) says how each patch meets the release's pristine tree; the
tests (``testing.drift_behaviour``) run on that pristine release, in a venv with the target
line's env pins when that line exists, else the from-line's (and the report says so); the
verdict rule (``stack.drift_report.verdict``) joins the two. When no venv can be made the
text decides, and the report says why.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from fp4stack.core.errors import EnvError
from fp4stack.core.log import log
from fp4stack.stack import drift_report, drift_text
from fp4stack.stack.drift_report import DriftReport
from fp4stack.stack.pins import Line, Project
from fp4stack.stack.resolve import check_target, resolve
from fp4stack.stack.series import parse_patch, series_paths
from fp4stack.testing.drift_behaviour import TestEnv, behaviour, pristine_env


@dataclass(frozen=True)
class DriftRun:
    """A drift's report, the target's pins, and the report files it wrote."""

    report: DriftReport
    target: Line
    json_file: Path  # build/drift/<upstream>-<from>-to-<to>.json
    markdown_file: Path | None = None  # docs/drift/<…>.md, when asked for


def compare(
    project: Project,
    line: Line,
    version: str,
    *,
    run_tests: bool = True,
    markdown: bool = False,
    test_env: TestEnv | None = None,
) -> DriftRun:
    """Drift ``line`` against release ``version`` and write the report's JSON under build/
    (and, with ``markdown``, the committed report in docs/drift/ with its JSON beside it).

    :raises UsageError: a version the index does not have, or ``line``'s own.
    """
    report, target = drift(project, line, version, run_tests=run_tests, test_env=test_env)
    json_path = drift_report.write_json(project, report)
    md_path = drift_report.write_markdown(project, report) if markdown else None
    return DriftRun(report, target, json_path, md_path)


def drift(
    project: Project,
    line: Line,
    version: str,
    *,
    run_tests: bool = True,
    test_env: TestEnv | None = None,
) -> tuple[DriftReport, Line]:
    """Every patch of ``line`` against release ``version``; also the target's pins.

    :param run_tests: False: the text alone decides (no venv is made).
    :param test_env: where to run the tests instead of a venv of the official wheel.
    """
    check_target(project, line, version, newer=False)
    target, env_note = target_line(project, line, version)
    patches = drift_text.text_drift(project, line, target)
    note = "not run (--no-tests): the text decides"
    if run_tests:
        try:
            env = test_env or pristine_env(project, target)
        except EnvError as error:
            note = f"no test env for {target.id} ({error}): the text decides"
            log(note, "warn")
        else:
            patches, note = behaviour(project, line, target, env, patches), ""
    else:
        env_note = ""
    statuses = {q.path.name: q.trailer("Upstream-Status") for q in map(parse_patch,
                series_paths(project.patches(line)))}  # fmt: skip
    decided = []
    for p in patches:
        verdict, by = drift_report.verdict(p.text, p.tested, p.tested_with_others)
        p = dataclasses.replace(p, verdict=verdict, decided_by=by)
        decided.append(drift_report.status_decides(p, (statuses.get(p.patch) or [""])[0], version))
    report = DriftReport(line.id, target.id, line.distribution, decided, note, env_note)
    return report, target


def target_line(project: Project, line: Line, version: str) -> tuple[Line, str]:
    """``line``'s upstream at ``version``, and which pins its test env takes.

    An existing line is taken as pinned (its artifacts, its env). Otherwise the release is
    resolved from the index and its env pins are the from-line's, with a note saying so.
    """
    pinned = project.lines.get(f"{line.upstream}@{version}")
    if pinned is not None:
        return pinned, f"{pinned.id}'s own pins ({_env_summary(pinned)})"
    target = resolve(project, line, version)
    note = (f"no {target.id} line yet, so {line.id}'s env pins ({_env_summary(line)}); "
            f"check them against what {line.distribution} {version} declares")  # fmt: skip
    return target, note


def _env_summary(line: Line) -> str:
    overrides = [f"override {pin}" for pin in line.env.overrides]
    return ", ".join([f"torch {line.env.torch}", *line.env.requires, *overrides])
