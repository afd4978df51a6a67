"""The doctor's human reports: findings grouped by severity, consumers, env verdicts."""

from __future__ import annotations

import textwrap
from collections import defaultdict

from fp4stack.checkpoint.doctor.findings import SEVERITIES, Finding, Report
from fp4stack.installed.defects import EnvReport, PackageReport

PER_CODE = 8  # findings shown per code and severity; --json lists all


def _finding_lines(findings: list[Finding]) -> list[str]:
    by_code: dict[str, list[Finding]] = defaultdict(list)
    for f in findings:
        by_code[f.code].append(f)
    lines = []
    for code, group in by_code.items():
        for f in group[:PER_CODE]:
            lines.append(f"  [{code}] {f.where}: {f.message}")
            lines.append(f"      fix: {f.fix}")
        if len(group) > PER_CODE:
            lines.append(f"  [{code}] ... and {len(group) - PER_CODE} more like these (--json)")
    return lines


def format_checkpoint(report: Report) -> str:
    """The report as text: summary, findings by severity, consumers."""
    checks = "headers only" if report.headers_only else "headers and scale values"
    lines = [
        f"checkpoint: {report.root}",
        f"format:     {'; '.join(report.formats)}",
        f"tensors:    {report.tensors} ({report.quantized} quantized weights; checked: {checks})",
    ]
    for severity in SEVERITIES:
        found = report.by_severity(severity)
        if found:
            lines += ["", f"{severity.upper()} ({len(found)})", *_finding_lines(found)]
    if report.healthy:
        lines += ["", "no problems found"]
    if report.consumers:
        lines += ["", "consumers:"]
        width = max(len(c.verdict) for c in report.consumers)
        for c in report.consumers:
            indent = " " * (width + 4)
            lines += textwrap.wrap(f"{c.consumer}: {c.detail}", 100, break_long_words=False,
                                   initial_indent=f"  {c.verdict.ljust(width)}  ",
                                   subsequent_indent=indent + "  ")  # fmt: skip
            extra = [f"patch: {p}" for p in c.patches]
            extra += [f"run: {c.command}"] if c.command else []
            lines += [f"  {' ' * width}    {e}" for e in extra]
    return "\n".join(lines)


def _package(pkg: PackageReport) -> list[str]:
    lines = [f"{pkg.distribution} {pkg.version}: {pkg.build}"]
    if not pkg.line:
        near = f"; the nearest line is {pkg.nearest}" if pkg.nearest else ""
        lines.append(f"  no fp4stack line for this release{near}: its defects are not known here")
        return lines
    affected = sum(d.status == "affected" for d in pkg.defects)
    unknown = sum(d.status == "unknown" for d in pkg.defects)
    lines.append(
        f"  line {pkg.line}: {len(pkg.defects)} known defects, {affected} present"
        + (f", {unknown} undecided" if unknown else "")
    )
    for d in pkg.defects:
        name = d.patch.rsplit("/", 1)[-1].removesuffix(".patch")
        lines.append(f"  {d.status:<8}  {name}  ({d.method}: {d.detail})")
    if pkg.command:
        lines.append(f"  fix: {pkg.command}")
    return lines


def format_env(env: EnvReport) -> str:
    """The environment report as text."""
    lines = [f"python: {env.python} ({env.python_version}); torch {env.torch or 'not installed'}"]
    if env.missing:
        lines.append(f"not installed: {', '.join(env.missing)}")
    for pkg in env.packages:
        lines += ["", *_package(pkg)]
    lines += ["", "affected: fix with the commands above" if env.affected else "no known defect"]
    return "\n".join(lines)
