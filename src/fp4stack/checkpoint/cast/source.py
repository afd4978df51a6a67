"""Open an MXFP4 source checkpoint: check its format and index, validate headers, pair
blocks with scales.

Everything here reads headers only, so every bad input is reported before any output exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fp4stack.checkpoint.detect import CT_MXFP4, CT_MXFP4_FORMAT, GPT_OSS_MXFP4, Detected, detect
from fp4stack.checkpoint.mxfp4_bias import E8M0_DTYPES
from fp4stack.checkpoint.reader import CONFIG, INDEX_NAME, Checkpoint, open_checkpoint
from fp4stack.core.errors import UsageError


@dataclass(frozen=True)
class QuantUnit:
    """One MXFP4 tensor: packed bytes ``(..., rows, G*16)``, E8M0 scales ``(..., rows, G)``."""

    base: str  # gpt-oss: parameter name without "_blocks"; compressed-tensors: module name
    blocks: str
    scales: str
    blocks_file: str
    scales_file: str
    packed_shape: tuple[int, ...]


@dataclass
class Source:
    """A validated source checkpoint: its MXFP4 units, paired and checked."""

    ckpt: Checkpoint
    layout: str  # the detected format: GPT_OSS_MXFP4 or CT_MXFP4
    units: dict[str, QuantUnit] = field(default_factory=dict)  # keyed by the blocks tensor
    consumed: set[str] = field(default_factory=set)  # scales tensors, emitted with their unit

    def close(self) -> None:
        self.ckpt.close()


def _ct_problem(found: Detected) -> str | None:
    """Why compressed-tensors config groups are not MXFP4 in groups of 32, or None."""
    formats = {g.format for g in found.groups}
    if formats != {CT_MXFP4_FORMAT}:
        return f"compressed-tensors format {sorted(map(str, formats))}"
    sizes = {g.group_size for g in found.groups}
    if not sizes <= {32}:
        return f"{CT_MXFP4_FORMAT} with weights group_size {sorted(map(str, sizes))}, not 32"
    return None


def source_layout(found: Detected, config_path: Path) -> str:
    """gpt-oss (``quant_method: mxfp4``) or compressed-tensors ``mxfp4-pack-quantized``."""
    if found.formats == [GPT_OSS_MXFP4]:
        return GPT_OSS_MXFP4
    detail = _ct_problem(found) if found.groups else found.why or ", ".join(found.formats)
    if detail is None:
        return CT_MXFP4
    raise UsageError(
        f"{config_path}: unsupported source format ({detail})",
        hint="supported: gpt-oss MXFP4 (quant_method 'mxfp4') and compressed-tensors "
        "'mxfp4-pack-quantized' with group_size 32",
    )


def _require_consistent(ckpt: Checkpoint) -> None:
    """The cast writes a new index from the shards: any disagreement is refused, named."""
    index_path = ckpt.root / INDEX_NAME
    if ckpt.missing_shards:
        shard = ckpt.missing_shards[0]
        raise UsageError(f"{index_path}: shard {shard!r} does not exist in {ckpt.root}")
    if ckpt.duplicates:
        name, shards = next(iter(ckpt.duplicates.items()))
        raise UsageError(f"{ckpt.root / shards[1]}: tensor {name!r} also in {shards[0]}")
    gap = ckpt.index_disagreement()
    if gap.wrong or gap.absent:
        name = (gap.wrong or gap.absent)[0]
        held = f"is in {ckpt.where[name]}" if name in ckpt.where else "is in no shard"
        raise UsageError(
            f"{index_path}: tensor {name!r} is mapped to {ckpt.weight_map[name]} but {held}"
        )
    if gap.unlisted:
        name = gap.unlisted[0]
        raise UsageError(f"{index_path}: tensor {name!r} is in {ckpt.where[name]} but not mapped")


def _bad(src: Source, shard: str, name: str, what: str) -> UsageError:
    return UsageError(f"{src.ckpt.root / shard}: tensor {name!r}: {what}")


def _pair(src: Source, blocks: str, scales: str, base: str) -> None:
    where = src.ckpt.where
    b_shard = where[blocks]
    if scales not in where:
        raise _bad(src, b_shard, blocks, f"no matching scales tensor {scales!r}")
    s_shard = where[scales]
    b, s = src.ckpt.info(blocks), src.ckpt.info(scales)
    if b.dtype != "U8":
        raise _bad(src, b_shard, blocks, f"dtype {b.dtype}, expected U8")
    if s.dtype not in E8M0_DTYPES:
        raise _bad(src, s_shard, scales, f"dtype {s.dtype}, expected U8 or F8_E8M0")
    if src.layout == GPT_OSS_MXFP4:
        if len(b.shape) not in (3, 4) or b.shape[-1] != 16:
            raise _bad(
                src,
                b_shard,
                blocks,
                f"shape {list(b.shape)}: expected (..., G, 16) blocks "
                "of 16 bytes (32 FP4 values) for a 2-D or 3-D weight",
            )
        packed = (*b.shape[:-2], b.shape[-2] * 16)
        agree = s.shape == b.shape[:-1]
    else:
        if len(b.shape) != 2 or b.shape[-1] % 16:
            raise _bad(
                src,
                b_shard,
                blocks,
                f"shape {list(b.shape)}: expected (out, in/2) with in a multiple of 32",
            )
        packed = b.shape
        agree = s.shape == (*b.shape[:-1], b.shape[-1] // 16)
    if not agree:
        raise _bad(
            src,
            s_shard,
            scales,
            f"shape {list(s.shape)} disagrees with {blocks!r} "
            f"{list(b.shape)} (one scale per 32 values)",
        )
    src.units[blocks] = QuantUnit(base, blocks, scales, b_shard, s_shard, packed)
    src.consumed.add(scales)


def _find_units(src: Source) -> None:
    where = src.ckpt.where
    if src.layout == GPT_OSS_MXFP4:
        blocks_sfx, scales_sfx = "_blocks", "_scales"
    else:
        blocks_sfx, scales_sfx = ".weight_packed", ".weight_scale"
    for name in sorted(where):
        if name.endswith(blocks_sfx):
            base = name[: -len(blocks_sfx)]
            _pair(src, name, base + scales_sfx, base)
            if src.layout == CT_MXFP4 and base + ".weight_global_scale" in where:
                raise _bad(
                    src,
                    where[name],
                    base + ".weight_global_scale",
                    "a global scale: this module is NVFP4, not MXFP4",
                )
    for name in sorted(where):
        orphan = name.endswith(scales_sfx) and name not in src.consumed
        if orphan and src.ckpt.info(name).dtype in E8M0_DTYPES:
            raise _bad(src, where[name], name, f"scales without a {blocks_sfx!r} tensor")
    if not src.units:
        raise UsageError(
            f"{src.ckpt.root}: no MXFP4 tensors ({blocks_sfx!r} + {scales_sfx!r}) found"
        )


def open_source(root: Path) -> Source:
    """Validate SRC and everything in its headers; raises UsageError naming file and tensor."""
    ckpt = open_checkpoint(root, "SRC")
    try:
        layout = source_layout(detect(ckpt.config, ckpt.hf_quant), root / CONFIG)
        _require_consistent(ckpt)
        src = Source(ckpt, layout)
        _find_units(src)
    except BaseException:
        ckpt.close()
        raise
    return src
