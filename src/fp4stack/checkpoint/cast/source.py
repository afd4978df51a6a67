"""Open an MXFP4 source checkpoint: detect its layout, validate headers, pair blocks/scales.

Everything here reads headers only, so every bad input is reported before any output exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fp4stack.checkpoint.jsonfile import read_json
from fp4stack.checkpoint.safetensors_io import SafetensorsFile, TensorInfo
from fp4stack.core.errors import UsageError

INDEX_NAME = "model.safetensors.index.json"
GPT_OSS = "gpt-oss"
COMPRESSED_TENSORS = "compressed-tensors"
MXFP4_CT_FORMAT = "mxfp4-pack-quantized"
SCALE_DTYPES = ("U8", "F8_E8M0")


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
    """A validated source checkpoint."""

    root: Path
    config: dict[str, Any]
    layout: str
    shards: list[str]
    files: dict[str, SafetensorsFile]
    index: dict[str, Any] | None
    units: dict[str, QuantUnit] = field(default_factory=dict)  # keyed by the blocks tensor
    consumed: set[str] = field(default_factory=set)  # scales tensors, emitted with their unit

    def info(self, shard: str, name: str) -> TensorInfo:
        return self.files[shard].tensors[name]

    def close(self) -> None:
        for f in self.files.values():
            f.close()


def _read_json(path: Path) -> dict[str, Any]:
    return read_json(path, "SRC must be a Hugging Face checkpoint")


def _ct_problem(qc: dict[str, Any]) -> str | None:
    """Why a compressed-tensors quantization_config is not MXFP4 in groups of 32, or None."""
    groups = qc.get("config_groups") or {}
    if not isinstance(groups, dict) or not all(isinstance(g, dict) for g in groups.values()):
        return "config_groups is not a map of objects"
    formats = {g.get("format") or qc.get("format") for g in groups.values()} or {qc.get("format")}
    if formats != {MXFP4_CT_FORMAT}:
        return f"compressed-tensors format {sorted(map(str, formats))}"
    weights = [g.get("weights") for g in groups.values()]
    sizes = {w.get("group_size") if isinstance(w, dict) else None for w in weights}
    if not sizes <= {32}:
        return f"{MXFP4_CT_FORMAT} with weights group_size {sorted(map(str, sizes))}, not 32"
    return None


def detect_layout(config: dict[str, Any], config_path: Path) -> str:
    """gpt-oss (``quant_method: mxfp4``) or compressed-tensors ``mxfp4-pack-quantized``."""
    qc = config.get("quantization_config")
    if not isinstance(qc, dict):
        qc = {}
    method = qc.get("quant_method")
    if method == "mxfp4":
        return GPT_OSS
    if method == "compressed-tensors":
        detail = _ct_problem(qc)
        if detail is None:
            return COMPRESSED_TENSORS
    else:
        detail = f"quant_method {method!r}" if method else "no quantization_config"
    raise UsageError(
        f"{config_path}: unsupported source format ({detail})",
        hint="supported: gpt-oss MXFP4 (quant_method 'mxfp4') and compressed-tensors "
        "'mxfp4-pack-quantized' with group_size 32",
    )


def _shard_names(root: Path) -> tuple[list[str], dict[str, Any] | None]:
    index_path = root / INDEX_NAME
    if index_path.exists():
        index = _read_json(index_path)
        weight_map = index.get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise UsageError(f"{index_path}: no weight_map")
        shards = sorted(set(weight_map.values()))
        for shard in shards:
            if not isinstance(shard, str) or "/" in shard or not (root / shard).is_file():
                raise UsageError(f"{index_path}: shard {shard!r} does not exist in {root}")
        return shards, index
    shards = sorted(p.name for p in root.glob("*.safetensors") if p.is_file())
    if not shards:
        raise UsageError(f"{root}: no *.safetensors files and no {INDEX_NAME}")
    return shards, None


def _locate(
    files: dict[str, SafetensorsFile], index: dict[str, Any] | None, root: Path
) -> dict[str, str]:
    """tensor name -> shard; every tensor exactly once, and agreeing with the index."""
    where: dict[str, str] = {}
    for shard, f in files.items():
        for name in f.tensors:
            if name in where:
                raise UsageError(f"{root / shard}: tensor {name!r} also in {where[name]}")
            where[name] = shard
    for name, shard in (index or {}).get("weight_map", {}).items():
        if where.get(name) != shard:
            raise UsageError(
                f"{root / INDEX_NAME}: tensor {name!r} is mapped to {shard} but "
                + (f"is in {where[name]}" if name in where else "is in no shard")
            )
    return where


def _bad(src: Source, shard: str, name: str, what: str) -> UsageError:
    return UsageError(f"{src.root / shard}: tensor {name!r}: {what}")


def _pair(src: Source, where: dict[str, str], blocks: str, scales: str, base: str) -> None:
    b_shard = where[blocks]
    if scales not in where:
        raise _bad(src, b_shard, blocks, f"no matching scales tensor {scales!r}")
    s_shard = where[scales]
    b, s = src.info(b_shard, blocks), src.info(s_shard, scales)
    if b.dtype != "U8":
        raise _bad(src, b_shard, blocks, f"dtype {b.dtype}, expected U8")
    if s.dtype not in SCALE_DTYPES:  # E8M0 bytes, stored as uint8 or as torch's float8_e8m0fnu
        raise _bad(src, s_shard, scales, f"dtype {s.dtype}, expected U8 or F8_E8M0")
    if src.layout == GPT_OSS:
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


def _find_units(src: Source, where: dict[str, str]) -> None:
    if src.layout == GPT_OSS:
        blocks_sfx, scales_sfx = "_blocks", "_scales"
    else:
        blocks_sfx, scales_sfx = ".weight_packed", ".weight_scale"
    for name in sorted(where):
        if name.endswith(blocks_sfx):
            base = name[: -len(blocks_sfx)]
            _pair(src, where, name, base + scales_sfx, base)
            if src.layout == COMPRESSED_TENSORS and base + ".weight_global_scale" in where:
                raise _bad(
                    src,
                    where[name],
                    base + ".weight_global_scale",
                    "a global scale: this module is NVFP4, not MXFP4",
                )
    for name in sorted(where):
        orphan = name.endswith(scales_sfx) and name not in src.consumed
        if orphan and src.info(where[name], name).dtype in SCALE_DTYPES:
            raise _bad(src, where[name], name, f"scales without a {blocks_sfx!r} tensor")
    if not src.units:
        raise UsageError(f"{src.root}: no MXFP4 tensors ({blocks_sfx!r} + {scales_sfx!r}) found")


def open_source(root: Path) -> Source:
    """Validate SRC and everything in its headers; raises UsageError naming file and tensor."""
    if not root.is_dir():
        raise UsageError(f"{root}: not a directory", hint="SRC must be a checkpoint directory")
    config = _read_json(root / "config.json")
    layout = detect_layout(config, root / "config.json")
    shards, index = _shard_names(root)
    files: dict[str, SafetensorsFile] = {}
    src = Source(root, config, layout, shards, files, index)
    try:
        for shard in shards:
            files[shard] = SafetensorsFile(root / shard)
        _find_units(src, _locate(files, index, root))
    except BaseException:
        src.close()
        raise
    return src
