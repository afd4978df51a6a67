"""Checks every format shares: the index against the shards, and scale values."""

from __future__ import annotations

import numpy as np

from fp4stack.checkpoint.doctor.findings import Finding, Repair, Report
from fp4stack.checkpoint.reader import INDEX_NAME, Checkpoint

SCALAR_SHAPES = ((), (1,))
FIX = "fp4stack fix CHECKPOINT OUT"


def check_layout(ckpt: Checkpoint, report: Report) -> None:
    """Shards the index names but lack, tensors in two shards, and an index that disagrees."""
    for shard in ckpt.missing_shards:
        report.add(
            Finding(
                "error",
                "missing-shard",
                shard,
                f"{INDEX_NAME} names {shard}, which does not exist",
                "download the missing shard again",
            )
        )
    for name, shards in sorted(ckpt.duplicates.items()):
        report.add(
            Finding(
                "error",
                "duplicate-tensor",
                name,
                f"tensor in {len(shards)} shards: {', '.join(shards)}",
                "remove the stale copy (which one is right cannot be told from the files)",
            )
        )
    for name in ckpt.stray_files:
        report.add(
            Finding(
                "info",
                "unindexed-file",
                name,
                f"not named by {INDEX_NAME}: loaders ignore it",
                "delete it if it is a leftover",
            )
        )
    if ckpt.index is not None:
        _check_index(ckpt, report)


def _check_index(ckpt: Checkpoint, report: Report) -> None:
    assert ckpt.index is not None
    gap = ckpt.index_disagreement()
    problems = [
        f"{len(items)} {what} (first: {items[0]!r})"
        for items, what in (
            (gap.wrong, "tensors mapped to the wrong shard"),
            (gap.absent, "mapped tensors that no shard holds"),
            (gap.unlisted, "tensors the index does not map"),
        )
        if items
    ]
    if problems and not ckpt.missing_shards:
        report.add(
            Finding(
                "error",
                "index-mismatch",
                INDEX_NAME,
                f"the index disagrees with the shards: {'; '.join(problems)}",
                f"`{FIX}` rebuilds the weight_map from the shards' headers",
                repairs=(Repair("index"),),
            )
        )
    total = (ckpt.index.get("metadata") or {}).get("total_size")
    actual = ckpt.total_bytes
    if total is not None and total != actual and not ckpt.missing_shards:
        report.add(
            Finding(
                "warning",
                "index-total-size",
                INDEX_NAME,
                f"metadata.total_size is {total}, the tensors hold {actual} bytes",
                f"`{FIX}` writes the exact total",
                repairs=(Repair("index"),),
            )
        )


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
