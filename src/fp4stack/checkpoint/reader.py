"""Open a checkpoint directory: its JSON files and its shards' safetensors headers.

The one reader of the cast, the doctor and fix; it reads headers only, never the model.
What cannot be read is a :class:`UsageError` naming the file: no directory, no config.json,
unreadable JSON, an index whose ``weight_map`` is not a map of shard file names, no shards,
a shard that is not valid safetensors. What is readable but inconsistent is kept for each
tool to judge: shards the index names that do not exist, tensors in two shards,
``*.safetensors`` files the index omits, and an index that disagrees with the shards
(:meth:`Checkpoint.index_disagreement`). The cast refuses every one of them; the doctor
reports them as findings, and fix rebuilds the index.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fp4stack.checkpoint.fp4 import E4M3_VALUES
from fp4stack.checkpoint.jsonfile import read_json, read_json_if_present
from fp4stack.checkpoint.safetensors_io import SafetensorsFile, TensorInfo
from fp4stack.core.errors import UsageError

CONFIG = "config.json"
INDEX_NAME = "model.safetensors.index.json"
# safetensors integer dtypes wider than a byte, as numpy reads them
_INTEGERS = {
    "I8": "i1",
    "I16": "<i2",
    "U16": "<u2",
    "I32": "<i4",
    "U32": "<u4",
    "I64": "<i8",
    "U64": "<u8",
}
HF_QUANT_CONFIG = "hf_quant_config.json"


@dataclass(frozen=True)
class IndexDisagreement:
    """Where the index's weight_map and the opened shards disagree (names, sorted).

    Entries that name a missing shard are not counted: ``missing_shards`` says so already.
    """

    wrong: list[str]  # mapped to a shard that exists, but held by another one
    absent: list[str]  # mapped to a shard that exists, held by no shard
    unlisted: list[str]  # held by a shard, not mapped at all


@dataclass
class Checkpoint:
    """A checkpoint's JSON files and the headers of its shards."""

    root: Path
    config: dict[str, Any]
    hf_quant: dict[str, Any] | None
    index: dict[str, Any] | None
    weight_map: dict[str, str] = field(default_factory=dict)  # the index's; {} without one
    files: dict[str, SafetensorsFile] = field(default_factory=dict)  # opened, sorted by name
    where: dict[str, str] = field(default_factory=dict)  # tensor -> the (first) shard holding it
    duplicates: dict[str, list[str]] = field(default_factory=dict)  # tensor -> every shard
    missing_shards: list[str] = field(default_factory=list)  # named by the index, absent
    stray_files: list[str] = field(default_factory=list)  # *.safetensors the index omits

    @property
    def shards(self) -> list[str]:
        """The shards opened, sorted: those the index names that exist, or every
        ``*.safetensors`` file when there is no index."""
        return list(self.files)

    @property
    def quantization_config(self) -> dict[str, Any]:
        qc = self.config.get("quantization_config")
        return qc if isinstance(qc, dict) else {}

    @property
    def total_bytes(self) -> int:
        """The bytes of every tensor of every opened shard (an index's ``total_size``)."""
        return sum(info.nbytes for f in self.files.values() for info in f.tensors.values())

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
        elif info.dtype in _INTEGERS:
            out = data.view(_INTEGERS[info.dtype]).astype(np.float64)
        elif info.dtype == "F64":
            out = data.view("<f8")
        else:  # U8, F8_E8M0, BOOL: one byte each, read as its integer
            out = data.astype(np.float64)
        return out.reshape(info.shape)

    def index_disagreement(self) -> IndexDisagreement:
        """Nothing without an index."""
        if self.index is None:
            return IndexDisagreement([], [], [])
        present = set(self.files)
        mapped = {n: s for n, s in self.weight_map.items() if s in present}
        return IndexDisagreement(
            sorted(n for n, s in mapped.items() if n in self.where and self.where[n] != s),
            sorted(n for n in mapped if n not in self.where),
            sorted(n for n in self.where if n not in self.weight_map),
        )

    def close(self) -> None:
        for f in self.files.values():
            f.close()


def _weight_map(root: Path, index: dict[str, Any]) -> dict[str, str]:
    """The index's weight_map: a non-empty map of tensor names to shard file names."""
    path, weight_map = root / INDEX_NAME, index.get("weight_map")
    if not weight_map:
        raise UsageError(f"{path}: no weight_map")
    if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
        raise UsageError(f"{path}: weight_map is not a map of file names")
    bad = sorted(s for s in set(weight_map.values()) if "/" in s or s.startswith("."))
    if bad:
        raise UsageError(f"{path}: shard name {bad[0]!r} is not a file name")
    metadata = index.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise UsageError(f"{path}: metadata is {type(metadata).__name__}, not an object")
    return weight_map


def open_checkpoint(root: Path, arg: str = "CHECKPOINT") -> Checkpoint:
    """Read config.json, hf_quant_config.json, the index and every shard's header.

    :param arg: what the command line calls the directory (SRC, CHECKPOINT), for the hints.
    :raises UsageError: no such directory, no config.json, unreadable JSON, a malformed
        weight_map, no shards, or a shard that is not valid safetensors (named, with why).
    """
    if not root.is_dir():
        raise UsageError(f"{root}: not a directory", hint=f"{arg} must be a checkpoint directory")
    config = read_json(root / CONFIG, f"{arg} must be a Hugging Face checkpoint directory")
    hf_quant = read_json_if_present(root / HF_QUANT_CONFIG)
    index = read_json_if_present(root / INDEX_NAME)
    ckpt = Checkpoint(root, config, hf_quant, index)
    on_disk = sorted(p.name for p in root.glob("*.safetensors") if p.is_file())
    if index is None:
        if not on_disk:
            raise UsageError(f"{root}: no *.safetensors files and no {INDEX_NAME}")
        shards = on_disk
    else:
        ckpt.weight_map = _weight_map(root, index)
        named = sorted(set(ckpt.weight_map.values()))
        shards = [s for s in named if (root / s).is_file()]
        ckpt.missing_shards = [s for s in named if s not in shards]
        ckpt.stray_files = [s for s in on_disk if s not in shards]
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
