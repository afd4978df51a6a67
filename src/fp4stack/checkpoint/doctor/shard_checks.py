"""The checks of a checkpoint's files, whatever its format: shards the index names but lack,
tensors in two shards, files the index omits, and an index that disagrees with the shards."""

from __future__ import annotations

from fp4stack.checkpoint.doctor.findings import FIX, Finding, Repair, Report
from fp4stack.checkpoint.reader import INDEX_NAME, Checkpoint


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
