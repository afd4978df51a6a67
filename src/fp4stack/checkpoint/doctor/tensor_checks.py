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


# Low-bit payload dtypes: packed FP4 (two codes per byte) and FP8 codes.
PAYLOAD_DTYPES = ("U8", "F8_E4M3", "F8_E5M2")
# What a payload's name ends in, before its scale's suffix: `x.weight` -> `x.weight_scale`,
# `x.weight_packed` -> `x.weight_scale`, gpt-oss `x_blocks` -> `x_scales`, ModelOpt's fused
# experts `x` -> `x_weight_scale`.
_PAYLOAD_SUFFIXES = (".weight_packed", ".weight", "_blocks")
# The per-block (or per-channel) scale after that stem, in every format we read; a global
# scale alone (`_weight_scale_2`, `weight_global_scale`) does not make a weight readable.
_BLOCK_SCALE_SUFFIXES = (".weight_scale", "_weight_scale", "_scales", ".weight_scale_inv")


def check_payloads_have_scales(ckpt: Checkpoint, report: Report) -> None:
    """Every low-bit payload (a U8 or FP8 tensor that is not itself a scale) has some scale
    beside it, whatever the format calls it: one without is the silently dropped scale a
    loader turns into garbage. Tensors a format checker already reported are left to it."""
    reported = {f.where for f in report.findings}
    for name in sorted(ckpt.where):
        if ckpt.info(name).dtype not in PAYLOAD_DTYPES or "scale" in name.rsplit(".", 1)[-1]:
            continue
        if ckpt.label(name) in reported:
            continue
        stem = next((name.removesuffix(s) for s in _PAYLOAD_SUFFIXES if name.endswith(s)), name)
        if any(stem + suffix in ckpt.where for suffix in _BLOCK_SCALE_SUFFIXES):
            continue
        report.add(
            Finding(
                "error",
                "payload-without-scale",
                ckpt.label(name),
                f"{ckpt.info(name).dtype} low-bit weight with no scale tensor beside it: "
                "a loader would read its codes as values, or drop it",
                "the checkpoint is incomplete: re-export it, or re-download its shards",
            )
        )
