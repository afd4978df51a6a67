"""Diagnose one checkpoint: open, detect, validate, say what it is in the vocabulary of
patch headers, and give the verdicts that need no release line (repairs, the cast)."""

from __future__ import annotations

from pathlib import Path

from fp4stack.checkpoint import detect
from fp4stack.checkpoint.doctor.checkers import checker
from fp4stack.checkpoint.doctor.consumers import profile, repair_and_tool_verdicts
from fp4stack.checkpoint.doctor.findings import SEVERITIES, Finding, Report
from fp4stack.checkpoint.doctor.shard_checks import check_layout
from fp4stack.checkpoint.doctor.tensor_checks import check_payloads_have_scales
from fp4stack.checkpoint.reader import Checkpoint, open_checkpoint
from fp4stack.core.errors import UsageError


def _validate(ckpt: Checkpoint, found: detect.Detected, report: Report) -> int:
    """Each detected format's checker; returns how many quantized weights they found."""
    return sum(
        checker(fmt).check(ckpt, found, report, report.headers_only) for fmt in found.formats
    )


def _detect(ckpt: Checkpoint) -> detect.Detected:
    """The checkpoint's formats. :raises UsageError: none we check (naming what it is)."""
    found = detect.detect(ckpt.config, ckpt.hf_quant)
    if found.formats:
        return found
    what = (
        found.why if found.family == detect.MODELOPT else f"unknown checkpoint format ({found.why})"
    )
    raise UsageError(
        f"{ckpt.root / found.declared_in}: {what}", hint=f"the doctor checks: {detect.SUPPORTED}"
    )


def _dedupe(findings: list[Finding]) -> list[Finding]:
    """Sorted by severity, each finding once. The message is part of what makes a finding
    distinct: one weight missing two partners is two problems with two fixes."""
    seen: set[tuple[str, str, str]] = set()
    out = []
    for f in sorted(findings, key=lambda f: (SEVERITIES.index(f.severity), f.code, f.where)):
        if (f.code, f.where, f.message) not in seen:
            seen.add((f.code, f.where, f.message))
            out.append(f)
    return out


def diagnose_open(ckpt: Checkpoint, headers_only: bool = False) -> Report:
    """The report for an opened checkpoint (the caller closes it)."""
    found = _detect(ckpt)
    report = Report(str(ckpt.root), found.formats, len(ckpt.where), 0, headers_only)
    report.findings += [
        Finding(
            "info", "unchecked-group", "config.json", note, "the doctor does not check this format"
        )
        for note in found.notes
    ]
    report.findings += [
        Finding(
            "warning",
            "config-mismatch",
            "config.json",
            conflict,
            "make the two files agree with the tensors",
        )
        for conflict in found.conflicts
    ]
    report.findings += [
        Finding(
            "error",
            "not-loadable",
            found.declared_in,
            f"not loadable as declared: {field}",
            "correct the quantization config to what the producer wrote",
        )
        for field in found.malformed
    ]
    check_layout(ckpt, report)
    report.quantized = _validate(ckpt, found, report)
    check_payloads_have_scales(ckpt, report)
    if report.quantized == 0:
        report.add(
            Finding(
                "error",
                "no-quantized-tensors",
                str(ckpt.root),
                f"config.json declares {', '.join(found.formats)} but no tensor "
                "has that format's names",
                "check that the shards match config.json",
            )
        )
    report.findings = _dedupe(report.findings)
    e8m0fnu = any(ckpt.info(n).dtype == "F8_E8M0" for n in ckpt.where)
    report.profile = profile(found, ckpt.config, list(ckpt.where), e8m0fnu)
    report.consumers = repair_and_tool_verdicts(found, report.findings)
    return report


def diagnose(root: Path, headers_only: bool = False) -> Report:
    """Diagnose the checkpoint at ``root``.

    :param headers_only: skip every check that reads tensor data (scale values, the
        exactness of bf16 scales); the rest reads only the safetensors headers.
    :raises UsageError: not a checkpoint, an unreadable or truncated file, an unknown format.
    """
    ckpt = open_checkpoint(root)
    try:
        return diagnose_open(ckpt, headers_only)
    finally:
        ckpt.close()
