"""NVFP4 in compressed-tensors (``weight_packed``, ``weight_scale``, ``weight_global_scale``)
and ModelOpt (``weight``, ``weight_scale``, ``weight_scale_2``; experts ``gate_up_proj``,
``gate_up_proj_weight_scale``, ``gate_up_proj_weight_scale_2`` in the BMM layout)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fp4stack.checkpoint.detect import CT_MXFP4, Detected
from fp4stack.checkpoint.doctor.findings import FIX, Finding, Repair, Report
from fp4stack.checkpoint.doctor.tensor_checks import (
    check_packed_dtype,
    check_scalar,
    scale_value_problems,
)
from fp4stack.checkpoint.fp4 import E4M3_MAX, E4M3_VALUES, e4m3_encode
from fp4stack.checkpoint.reader import Checkpoint

GROUP = 16
NVFP4_FIX_CODE = "nvfp4-fix-bf16-scale"
WIDE_SCALE_DTYPES = ("BF16", "F16", "F32")
WHEEL = "install fp4stack's patched wheel instead (`fp4stack install`)"


@dataclass(frozen=True)
class Unit:
    """One NVFP4 weight and its partners (names; '' when the format has none)."""

    packed: str
    scale: str
    global_scale: str
    input_scale: str
    expert: bool  # ModelOpt BMM layout (E, in/2, out)


def _ct_units(ckpt: Checkpoint) -> list[Unit]:
    out = []
    for name in sorted(ckpt.where):
        if name.endswith(".weight_packed") and f"{name[:-7]}_global_scale" in ckpt.where:
            base = name.removesuffix(".weight_packed")
            out.append(
                Unit(
                    name,
                    f"{base}.weight_scale",
                    f"{base}.weight_global_scale",
                    f"{base}.input_global_scale",
                    False,
                )
            )
    return out


def _modelopt_units(ckpt: Checkpoint) -> list[Unit]:
    out = []
    for name in sorted(ckpt.where):
        if name.endswith(".weight") and ckpt.info(name).dtype == "U8":
            base = name.removesuffix(".weight")
            out.append(Unit(name, f"{name}_scale", f"{name}_scale_2", f"{base}.input_scale", False))
        elif ckpt.info(name).dtype == "U8" and any(
            f"{name}_{partner}" in ckpt.where for partner in ("weight_scale", "weight_scale_2")
        ):
            # fused experts (gpt-oss): `x`, `x_weight_scale`, `x_weight_scale_2`; either
            # scale marks `x` as NVFP4, so a lost block scale is reported, not unseen
            scale = f"{name}_weight_scale"
            out.append(Unit(name, scale, f"{scale}_2", f"{name}_input_scale", True))
    return out


@dataclass(frozen=True)
class Nvfp4Checker:
    """The :class:`~fp4stack.checkpoint.doctor.checkers.FormatChecker` of compressed-tensors'
    or (``modelopt``) ModelOpt's NVFP4."""

    modelopt: bool

    def check(self, ckpt: Checkpoint, found: Detected, report: Report, headers_only: bool) -> int:
        """Validate every NVFP4 unit; returns how many there are."""
        if found.nvfp4_group not in (None, GROUP):
            report.add(
                Finding(
                    "error",
                    "nvfp4-group-size",
                    "config.json",
                    f"NVFP4 group_size is {found.nvfp4_group}; NVFP4 blocks are 16",
                    "fix the config to the group size the scales were made with",
                )
            )
        units = _modelopt_units(ckpt) if self.modelopt else _ct_units(ckpt)
        for unit in units:
            _check_unit(ckpt, unit, found.activations, report, headers_only)
        _orphans(ckpt, units, self.modelopt, CT_MXFP4 in found.formats, report)
        return len(units)


def _missing(ckpt: Checkpoint, unit: Unit, partner: str, what: str) -> Finding:
    return Finding(
        "error",
        "missing-partner",
        ckpt.label(unit.packed),
        f"NVFP4 weight without its {what} {partner!r}",
        "the checkpoint is incomplete: re-export it, or re-download its shards",
    )


def _check_unit(
    ckpt: Checkpoint, unit: Unit, activations: bool, report: Report, headers_only: bool
) -> None:
    check_packed_dtype(ckpt, unit.packed, "NVFP4", report)
    for partner, what in ((unit.scale, "block scales"), (unit.global_scale, "global scale")):
        if partner not in ckpt.where:
            report.add(_missing(ckpt, unit, partner, what))
    if activations and unit.input_scale not in ckpt.where:
        report.add(_missing(ckpt, unit, unit.input_scale, "input scale (W4A4)"))
    if unit.global_scale in ckpt.where:
        check_scalar(ckpt, report, unit.global_scale, "the global scale", headers_only)
    if activations and unit.input_scale in ckpt.where:
        check_scalar(ckpt, report, unit.input_scale, "the input scale", headers_only)
    if unit.scale in ckpt.where:
        _check_scale(ckpt, unit, report, headers_only)


def _expected_scale_shape(shape: tuple[int, ...], expert: bool) -> tuple[int, ...] | None:
    if expert and len(shape) == 3 and shape[1] * 2 % GROUP == 0:
        return (shape[0], shape[1] * 2 // GROUP, shape[2])
    if not expert and len(shape) == 2 and shape[1] * 2 % GROUP == 0:
        return (shape[0], shape[1] * 2 // GROUP)
    return None


def _check_scale(ckpt: Checkpoint, unit: Unit, report: Report, headers_only: bool) -> None:
    packed, scale = ckpt.info(unit.packed), ckpt.info(unit.scale)
    want = _expected_scale_shape(packed.shape, unit.expert)
    layout = "(E, in/2, out)" if unit.expert else "(out, in/2)"
    if want is None:
        report.add(
            Finding(
                "error",
                "bad-shape",
                ckpt.label(unit.packed),
                f"packed shape {list(packed.shape)} is not {layout} with in a multiple of 16",
                "re-export the checkpoint with its producer",
            )
        )
    elif scale.shape != want:
        report.add(
            Finding(
                "error",
                "bad-shape",
                ckpt.label(unit.scale),
                f"block scales {list(scale.shape)}, expected {list(want)} (one "
                f"per 16 values of {unit.packed!r} {list(packed.shape)})",
                "re-export the checkpoint with its producer",
            )
        )
    if scale.dtype in WIDE_SCALE_DTYPES:
        report.add(_widened(ckpt, unit, headers_only))
    elif scale.dtype != "F8_E4M3":
        report.add(
            Finding(
                "error",
                "bad-dtype",
                ckpt.label(unit.scale),
                f"NVFP4 block scales are {scale.dtype}, expected F8_E4M3",
                "re-export the checkpoint with its producer",
            )
        )
    if not headers_only:
        problems = scale_value_problems(ckpt.values(unit.scale), allow_zero_blocks=True)
        if problems:
            report.add(
                Finding(
                    "error",
                    "bad-scale-values",
                    ckpt.label(unit.scale),
                    f"block scales: {', '.join(problems)}",
                    "re-quantize this module",
                )
            )


def exact_e4m3(values: np.ndarray) -> tuple[int, str]:
    """How many values are not exact non-negative E4M3FN values, and the first of them."""
    flat = values.reshape(-1)
    finite = np.isfinite(flat) & (flat >= 0) & (flat <= E4M3_MAX)
    codes = e4m3_encode(np.where(finite, flat, 0))
    exact = finite & (E4M3_VALUES[codes] == flat)
    bad = np.flatnonzero(~exact)
    return len(bad), (f"{flat[bad[0]]!r} at flat index {int(bad[0])}" if len(bad) else "")


def _widened(ckpt: Checkpoint, unit: Unit, headers_only: bool) -> Finding:
    """NVFP4 scales stored wider than FP8: what the community nvfp4-fix tool's fix-model
    writes. Consumers expect F8_E4M3; it is undone exactly when every value is FP8."""
    dtype = ckpt.info(unit.scale).dtype
    why = (
        f"NVFP4 block scales are {dtype}, not F8_E4M3: the mark of the nvfp4-fix tool's "
        "fix-model, which casts them to bf16 on a wrong diagnosis (the compressed-tensors "
        "0.13.0 failures are fixed in its code, not the checkpoint). NVFP4 loaders "
        "(vLLM, compressed-tensors, ModelOpt) expect float8_e4m3fn"
    )
    repair = (Repair("fp8-scale", target=unit.scale),)
    if headers_only:
        return Finding(
            "error",
            NVFP4_FIX_CODE,
            ckpt.label(unit.scale),
            f"{why}; run without --headers-only to check that it converts back exactly",
            f"`{FIX}` converts them back to FP8 if exact; {WHEEL}",
            repairs=repair,
        )
    inexact, first = exact_e4m3(ckpt.values(unit.scale))
    if inexact:
        size = int(np.prod(ckpt.info(unit.scale).shape))
        refusal = (
            f"{inexact} of {size} values are not exact E4M3 values (first: {first}): "
            "converting back would round them"
        )
        return Finding(
            "error",
            NVFP4_FIX_CODE,
            ckpt.label(unit.scale),
            f"{why}; {refusal}",
            f"re-export from the original model; {WHEEL}",
            refusal=refusal,
        )
    return Finding(
        "error",
        NVFP4_FIX_CODE,
        ckpt.label(unit.scale),
        f"{why}; every value is an exact FP8 value, so this is undone exactly",
        f"`{FIX}` converts them back to F8_E4M3; then {WHEEL}",
        repairs=repair,
    )


def _owner_exists(ckpt: Checkpoint, name: str) -> bool:
    """Whether the weight a scale tensor belongs to exists (in any format)."""
    for suffix in (".weight_scale", ".weight_global_scale", ".weight_scale_2"):
        if name.endswith(suffix):
            base = name.removesuffix(suffix)
            return f"{base}.weight" in ckpt.where or f"{base}.weight_packed" in ckpt.where
    for suffix in ("_weight_scale", "_weight_scale_2"):
        if name.endswith(suffix):
            return name.removesuffix(suffix) in ckpt.where
    return True


def _orphans(
    ckpt: Checkpoint, units: list[Unit], modelopt: bool, mxfp4_too: bool, report: Report
) -> None:
    claimed = {n for u in units for n in (u.packed, u.scale, u.global_scale, u.input_scale)}
    for name in sorted(ckpt.where):
        if name in claimed:
            continue
        dtype = ckpt.info(name).dtype
        if name.endswith(".weight_packed") and not modelopt and not mxfp4_too:
            report.add(
                Finding(
                    "error",
                    "missing-partner",
                    ckpt.label(name),
                    "packed NVFP4 weight without its global scale "
                    f"{name.removesuffix('_packed') + '_global_scale'!r}",
                    "the checkpoint is incomplete: re-export it",
                )
            )
        elif dtype in ("F8_E4M3", *WIDE_SCALE_DTYPES) and not _owner_exists(ckpt, name):
            report.add(
                Finding(
                    "warning",
                    "orphan-scale",
                    ckpt.label(name),
                    "a scale without its weight: loaders ignore or reject it",
                    "drop it, or restore the weight it belongs to",
                )
            )
