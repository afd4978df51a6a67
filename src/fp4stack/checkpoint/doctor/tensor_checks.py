"""Checks of single tensors that the format checkers share: scale values, per-tensor
scales, and the dtype of packed FP4 weights."""

from __future__ import annotations

import numpy as np

from fp4stack.checkpoint.doctor.findings import Finding, Report
from fp4stack.checkpoint.reader import Checkpoint

SCALAR_SHAPES = ((), (1,))


def scale_value_problems(values: np.ndarray, allow_zero_blocks: bool) -> list[str]:
    """What is wrong with a tensor of scales: NaN, Inf, negative, zero (counted)."""
    flat = values.reshape(-1)
    problems = []
    for count, what in (
        (int(np.isnan(flat).sum()), "NaN"),
        (int(np.isinf(flat).sum()), "Inf"),
        (int((flat < 0).sum()), "negative"),
    ):
        if count:
            problems.append(f"{count} {what}")
    zeros = int((flat == 0).sum())
    if zeros and (not allow_zero_blocks or zeros == flat.size):
        problems.append(f"{zeros} of {flat.size} zero" + (" (all)" if zeros == flat.size else ""))
    return problems


def check_scalar(
    ckpt: Checkpoint, report: Report, name: str, what: str, headers_only: bool
) -> None:
    """A per-tensor scale (global scale, weight_scale_2, input scale): F32, scalar, finite, > 0."""
    info = ckpt.info(name)
    if info.dtype != "F32" or info.shape not in SCALAR_SHAPES:
        report.add(
            Finding(
                "error",
                "bad-global-scale",
                ckpt.label(name),
                f"{what} is {info.dtype} {list(info.shape)}, expected F32 [] or [1]",
                "re-export the checkpoint with its producer",
            )
        )
        return
    if headers_only:
        return
    value = float(ckpt.values(name).reshape(-1)[0])
    if not np.isfinite(value) or value <= 0:
        report.add(
            Finding(
                "error",
                "bad-global-scale",
                ckpt.label(name),
                f"{what} is {value}: every weight of the module decodes to NaN, Inf or 0",
                "re-quantize this module (its amax was 0 or non-finite)",
            )
        )


def check_packed_dtype(ckpt: Checkpoint, name: str, fmt: str, report: Report) -> None:
    """A packed FP4 weight (two E2M1 nibbles a byte) must be stored as U8."""
    dtype = ckpt.info(name).dtype
    if dtype != "U8":
        report.add(
            Finding(
                "error",
                "bad-dtype",
                ckpt.label(name),
                f"packed {fmt} weight is {dtype}, expected U8",
                "re-export the checkpoint with its producer",
            )
        )
