"""Open a checkpoint for diagnosis: JSON files and safetensors headers, never the model.

Unlike the cast's source, an inconsistent index is not an error here but something to
report, so this reader keeps what it finds. Bad input (no directory, no config.json, an
unreadable or truncated shard) is still a :class:`UsageError`: there is nothing to diagnose.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fp4stack.checkpoint import jsonfile
from fp4stack.checkpoint.fp4 import E4M3_VALUES
from fp4stack.checkpoint.safetensors_io import SafetensorsFile, TensorInfo
from fp4stack.core.errors import UsageError

INDEX_NAME = "model.safetensors.index.json"
HF_QUANT_CONFIG = "hf_quant_config.json"


_MISSING_HINT = "CHECKPOINT must be a Hugging Face checkpoint directory"


def read_json(path: Path, required: bool = True) -> dict[str, Any] | None:
    """A JSON object from ``path``; None when absent and not ``required``."""
    if required:
        return jsonfile.read_json(path, _MISSING_HINT)
    return jsonfile.read_json_if_present(path)


@dataclass
class Checkpoint:
    """A checkpoint's JSON files and the headers of its shards."""

    root: Path
    config: dict[str, Any]
    hf_quant: dict[str, Any] | None
    index: dict[str, Any] | None
    files: dict[str, SafetensorsFile] = field(default_factory=dict)
    where: dict[str, str] = field(default_factory=dict)  # tensor -> the shard holding it
    duplicates: dict[str, list[str]] = field(default_factory=dict)  # tensor -> every shard
    missing_shards: list[str] = field(default_factory=list)  # named by the index, absent
    stray_files: list[str] = field(default_factory=list)  # *.safetensors the index omits

    @property
    def quantization_config(self) -> dict[str, Any]:
        qc = self.config.get("quantization_config")
        return qc if isinstance(qc, dict) else {}

    def info(self, name: str) -> TensorInfo:
        return self.files[self.where[name]].tensors[name]

    def label(self, name: str) -> str:
        return f"{self.where[name]}:{name}"

    def raw(self, name: str) -> np.ndarray:
        """The tensor's bytes (read now: call only for the tensors a check needs)."""
        return self.files[self.where[name]].read(name)

    def values(self, name: str) -> np.ndarray:
        """The tensor decoded to float64 (F32, F16, BF16, F8_E4M3, U8/F8_E8M0 as bytes)."""
        info, data = self.info(name), self.raw(name)
        out: np.ndarray
        if info.dtype == "F32":
            out = data.view("<f4").astype(np.float64)
        elif info.dtype == "F16":
            out = data.view("<f2").astype(np.float64)
        elif info.dtype == "BF16":
            out = (data.view("<u2").astype(np.uint32) << 16).view("<f4").astype(np.float64)
        elif info.dtype == "F8_E4M3":
            magnitude = np.append(E4M3_VALUES, np.nan)[data & 0x7F]
            out = np.where(data & 0x80, -magnitude, magnitude)
        else:
            out = data.astype(np.float64)
        return out.reshape(info.shape)

    def close(self) -> None:
        for f in self.files.values():
            f.close()


def _shard_names(root: Path, index: dict[str, Any] | None) -> tuple[list[str], list[str]]:
    """(shards to open, shards the index names that do not exist)."""
    on_disk = sorted(p.name for p in root.glob("*.safetensors") if p.is_file())
    if index is None:
        if not on_disk:
            raise UsageError(f"{root}: no *.safetensors files and no {INDEX_NAME}")
        return on_disk, []
    weight_map = index.get("weight_map")
    if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
        raise UsageError(f"{root / INDEX_NAME}: weight_map is not a map of file names")
    named = sorted(set(weight_map.values()))
    bad = [s for s in named if "/" in s or s.startswith(".")]
    if bad:
        raise UsageError(f"{root / INDEX_NAME}: shard name {bad[0]!r} is not a file name")
    return [s for s in named if s in on_disk], [s for s in named if s not in on_disk]


def open_checkpoint(root: Path) -> Checkpoint:
    """Read config.json, hf_quant_config.json, the index and every shard's header.

    :raises UsageError: no such directory, no config.json, unreadable JSON, no shards, or a
        shard that is not valid safetensors (named, with the reason).
    """
    if not root.is_dir():
        raise UsageError(f"{root}: not a directory", hint="give a checkpoint directory")
    config = read_json(root / "config.json")
    assert config is not None
    ckpt = Checkpoint(
        root,
        config,
        read_json(root / HF_QUANT_CONFIG, required=False),
        read_json(root / INDEX_NAME, required=False),
    )
    shards, ckpt.missing_shards = _shard_names(root, ckpt.index)
    if ckpt.index is not None:
        ckpt.stray_files = sorted(
            p.name for p in root.glob("*.safetensors") if p.is_file() and p.name not in shards
        )
    try:
        for shard in shards:
            ckpt.files[shard] = SafetensorsFile(root / shard)
    except BaseException:
        ckpt.close()
        raise
    for shard, f in ckpt.files.items():
        for name in f.tensors:
            if name in ckpt.where:
                ckpt.duplicates.setdefault(name, [ckpt.where[name]]).append(shard)
            else:
                ckpt.where[name] = shard
    return ckpt
