"""MXFP4 in gpt-oss (``*_blocks`` (..., G, 16) + ``*_scales`` (..., G)) and compressed-tensors
(``weight_packed`` (out, in/2) + ``weight_scale`` (out, in/32), no global scale), and the
E8M0 bias of their scales (bias 125 from compressed-tensors 0.13.0; see ``mxfp4_bias``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fp4stack.checkpoint.detect import CT_NVFP4, Detected
from fp4stack.checkpoint.doctor.findings import FIX, Finding, Repair, Report
from fp4stack.checkpoint.doctor.tensor_checks import check_packed_dtype
from fp4stack.checkpoint.mxfp4_bias import (
    CT_BUG_BIAS,
    E8M0_DTYPES,
    E8M0_MAX,
    STANDARD_BIAS,
    detect_scale_bias,
    nonzero_blocks,
)
from fp4stack.checkpoint.reader import Checkpoint

GROUP = 32
BIAS_CODE = "mxfp4-scale-bias-125"


@dataclass(frozen=True)
class Unit:
    packed: str
    scale: str
    gpt_oss: bool


def _units(ckpt: Checkpoint, gpt_oss: bool) -> list[Unit]:
    if gpt_oss:
        return [
            Unit(n, n.removesuffix("_blocks") + "_scales", True)
            for n in sorted(ckpt.where)
            if n.endswith("_blocks")
        ]
    return [
        Unit(n, n.removesuffix("_packed") + "_scale", False)
        for n in sorted(ckpt.where)
        if n.endswith(".weight_packed")
        and n.removesuffix("_packed") + "_global_scale" not in ckpt.where
    ]


def _expected(unit: Unit, shape: tuple[int, ...]) -> tuple[int, ...] | None:
    if unit.gpt_oss:
        return shape[:-1] if len(shape) in (3, 4) and shape[-1] == GROUP // 2 else None
    if len(shape) == 2 and shape[1] % (GROUP // 2) == 0:
        return (shape[0], shape[1] // (GROUP // 2))
    return None


def _nvfp4_modules(ckpt: Checkpoint, report: Report) -> None:
    """Packed weights with a global scale are NVFP4, which this config does not declare."""
    for name in sorted(ckpt.where):
        if name.endswith(".weight_packed") and f"{name[:-7]}_global_scale" in ckpt.where:
            report.add(
                Finding(
                    "error",
                    "format-mismatch",
                    ckpt.label(name),
                    "an NVFP4 module (it has a weight_global_scale) in a checkpoint whose "
                    "config declares only mxfp4-pack-quantized: loaders read it as MXFP4",
                    "fix quantization_config to declare the NVFP4 group, or re-export",
                )
            )


@dataclass(frozen=True)
class Mxfp4Checker:
    """The :class:`~fp4stack.checkpoint.doctor.checkers.FormatChecker` of compressed-tensors'
    or (``gpt_oss``) gpt-oss's MXFP4."""

    gpt_oss: bool

    def check(self, ckpt: Checkpoint, found: Detected, report: Report, headers_only: bool) -> int:
        """Validate every MXFP4 unit and the scales' E8M0 bias; returns how many units."""
        if found.mxfp4_group not in (None, GROUP):
            report.add(
                Finding(
                    "error",
                    "mxfp4-group-size",
                    "config.json",
                    f"MXFP4 group_size is {found.mxfp4_group}; MX blocks are 32",
                    "fix the config to the group size the scales were made with",
                )
            )
        units = _units(ckpt, self.gpt_oss)
        if not self.gpt_oss and CT_NVFP4 not in found.formats:
            _nvfp4_modules(ckpt, report)
        for unit in units:
            _check_unit(ckpt, unit, report, headers_only)
        _orphans(ckpt, units, self.gpt_oss, report)
        good = [u for u in units if u.scale in ckpt.where]
        if good:
            _check_bias(ckpt, good, report, headers_only)
        return len(units)


def _check_unit(ckpt: Checkpoint, unit: Unit, report: Report, headers_only: bool) -> None:
    check_packed_dtype(ckpt, unit.packed, "MXFP4", report)
    packed = ckpt.info(unit.packed)
    if unit.scale not in ckpt.where:
        report.add(
            Finding(
                "error",
                "missing-partner",
                ckpt.label(unit.packed),
                f"MXFP4 weight without its scales {unit.scale!r}",
                "the checkpoint is incomplete: re-export it",
            )
        )
        return
    scale, want = ckpt.info(unit.scale), _expected(unit, packed.shape)
    if want is None or scale.shape != want:
        layout = "(..., G, 16) blocks" if unit.gpt_oss else "(out, in/2)"
        report.add(
            Finding(
                "error",
                "bad-shape",
                ckpt.label(unit.scale),
                f"scales {list(scale.shape)} do not fit {unit.packed!r} "
                f"{list(packed.shape)}: expected {layout} and one scale per 32 "
                "values",
                "re-export the checkpoint with its producer",
            )
        )
    if scale.dtype not in E8M0_DTYPES:
        report.add(
            Finding(
                "error",
                "bad-dtype",
                ckpt.label(unit.scale),
                f"MXFP4 scales are {scale.dtype}, expected E8M0 bytes (U8 or F8_E8M0)",
                "re-export the checkpoint with its producer",
            )
        )
    elif not headers_only:
        nan = int(np.count_nonzero(ckpt.raw(unit.scale) == 255))
        if nan:
            report.add(
                Finding(
                    "error",
                    "bad-scale-values",
                    ckpt.label(unit.scale),
                    f"{nan} E8M0 scales are 255 (NaN): their blocks decode to NaN",
                    "re-quantize this module",
                )
            )


def _orphans(ckpt: Checkpoint, units: list[Unit], gpt_oss: bool, report: Report) -> None:
    claimed = {n for u in units for n in (u.packed, u.scale)}
    suffix = "_scales" if gpt_oss else ".weight_scale"
    for name in sorted(ckpt.where):
        orphan = name.endswith(suffix) and name not in claimed
        if orphan and ckpt.info(name).dtype in E8M0_DTYPES:
            report.add(
                Finding(
                    "warning",
                    "orphan-scale",
                    ckpt.label(name),
                    "MXFP4 scales without their packed weight",
                    "drop them, or restore the weight they belong to",
                )
            )


def _out_of_range(ckpt: Checkpoint, units: list[Unit], shift: int) -> str:
    """Why the shift would not be exact: scales of non-zero blocks that would leave E8M0's
    range (the packed weights are read only for tensors holding such a scale)."""
    bad, first = 0, ""
    for unit in units:
        scales = ckpt.raw(unit.scale)
        high = scales.astype(np.int16) + shift > E8M0_MAX
        if not high.any():
            continue
        live = nonzero_blocks(ckpt.raw(unit.packed)).reshape(-1)
        hit = high & live
        bad += int(np.count_nonzero(hit))
        if hit.any() and not first:
            index = int(np.argmax(hit))
            first = f"{ckpt.label(unit.scale)} index {index}: byte {int(scales[index])}"
    if not bad:
        return ""
    return (
        f"{bad} scales of non-zero blocks would leave the E8M0 range when moved by "
        f"+{shift} (first: {first}): these bytes do not look like bias 125"
    )


def _check_bias(ckpt: Checkpoint, units: list[Unit], report: Report, headers_only: bool) -> None:
    bias, why = detect_scale_bias(ckpt.config)
    if bias == CT_BUG_BIAS:
        shift = STANDARD_BIAS - CT_BUG_BIAS
        refusal = "" if headers_only else _out_of_range(ckpt, units, shift)
        repairs = tuple(
            Repair("e8m0-shift", target=u.scale, partner=u.packed, shift=shift) for u in units
        )
        report.add(
            Finding(
                "error",
                BIAS_CODE,
                "config.json",
                f"{why}: every standard MX reader (vLLM, compressed-tensors 0.14+, fp4stack's "
                f"patched 0.13.0) decodes these {len(units)} weights to 1/4 of the producer's "
                "(`fp4stack cast` corrects it itself)" + (f"; {refusal}" if refusal else ""),
                f"`{FIX}` moves every exponent by +{shift} to standard E8M0 (exact), and records "
                "it in quantization_config.version"
                if not refusal
                else "check the producer version recorded in quantization_config",
                repairs=() if refusal else repairs,
                refusal=refusal,
            )
        )
    elif bias is None:
        report.add(
            Finding(
                "warning",
                "mxfp4-scale-bias-unknown",
                "config.json",
                f"the E8M0 bias of the scales cannot be told ({why})",
                "compressed-tensors 0.13.0 wrote bias 125, every other producer "
                "127: record the producer's version in quantization_config",
            )
        )
