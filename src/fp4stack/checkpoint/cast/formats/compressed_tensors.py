"""``--format compressed-tensors``: ``nvfp4-pack-quantized``.

``X.weight_packed`` (out, in/2) U8, ``X.weight_scale`` (out, in/16) F8_E4M3,
``X.weight_global_scale`` (1,) F32 holding the reciprocal of the tensor scale. Fused gpt-oss
experts become per-expert Linear modules ``experts.{e}.{gate,up,down}_proj`` (gate/up are the
even/odd rows of ``gate_up_proj``), their fused biases split the same way. config.json gets
``QuantizationConfig`` with the ``NVFP4A16`` preset, as ``model_dump`` serializes it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from fp4stack.checkpoint.cast import emit
from fp4stack.checkpoint.cast.convert import CastResult
from fp4stack.checkpoint.cast.emit import BiasOutput, Output
from fp4stack.checkpoint.cast.sink import Sink
from fp4stack.checkpoint.cast.source import QuantUnit
from fp4stack.checkpoint.safetensors_io import OutTensor


def quantization_config(excluded: list[str], source_ignore: list[str]) -> dict[str, Any]:
    """config.json's section: the source's ignore list, then the modules left unquantized."""
    weights = {
        "num_bits": 4,
        "type": "float",
        "symmetric": True,
        "group_size": 16,
        "strategy": "tensor_group",
        "dynamic": False,
        "scale_dtype": "torch.float8_e4m3fn",
    }
    group = {"targets": ["Linear"], "weights": weights, "input_activations": None}
    group |= {"output_activations": None, "format": None}
    ignore = list(source_ignore) + [m for m in excluded if m not in source_ignore]
    return {
        "config_groups": {"group_0": group},
        "quant_method": "compressed-tensors",
        "kv_cache_scheme": None,
        "format": "nvfp4-pack-quantized",
        "quantization_status": "compressed",
        "global_compression_ratio": None,
        "ignore": ignore,
        "moe_sparsity_config": None,
    }


def expert_split(unit: QuantUnit) -> list[tuple[str, slice]]:
    """Per-expert Linear leaf names of a fused 3-D gpt-oss tensor, and their row selection."""
    leaf = unit.base.rpartition(".")[2]
    if leaf == "gate_up_proj":
        return [("gate_proj", slice(0, None, 2)), ("up_proj", slice(1, None, 2))]
    return [(leaf, slice(None))]


def _global_scale(sink: Sink, offset: int, r: CastResult) -> None:
    sink.array(np.array([1.0 / r.tensor_scale], dtype=np.float32), offset)


def _expert_module(
    mod: str, shape: tuple[int, int], pick: Callable[[np.ndarray], np.ndarray], skip: int | None
) -> list[Output]:
    """One per-expert Linear; ``skip`` is the byte offset of its packed rows in the source
    tensor when they are contiguous there (then unchanged bytes are copied in the kernel)."""
    rows, half = shape

    def packed(s: Sink, o: int, r: CastResult) -> None:
        if r.unchanged and skip is not None:
            s.source_bytes(rows * half, o, skip)
        else:
            s.array(pick(r.packed), o)

    return [
        (OutTensor(f"{mod}.weight_packed", "U8", (rows, half)), packed),
        (OutTensor(f"{mod}.weight_scale", "F8_E4M3", (rows, half // 8)),
         lambda s, o, r: s.array(pick(r.scales), o)),
        (OutTensor(f"{mod}.weight_global_scale", "F32", (1,)), _global_scale),
    ]  # fmt: skip


class CompressedTensors:
    """compressed-tensors compresses only Linear/Embedding modules: experts are split."""

    name = "compressed-tensors"
    splits_experts = True

    def unit_outputs(self, unit: QuantUnit) -> list[Output]:
        *lead, rows, half = unit.packed_shape
        if not lead:
            mod = emit.module_of(unit)
            return [
                (OutTensor(f"{mod}.weight_packed", "U8", (rows, half)), emit.packed),
                (OutTensor(f"{mod}.weight_scale", "F8_E4M3", (rows, half // 8)), emit.scales),
                (OutTensor(f"{mod}.weight_global_scale", "F32", (1,)), _global_scale),
            ]
        parent = unit.base.rpartition(".")[0]
        outs: list[Output] = []
        for e in range(lead[0]):
            for leaf, sel in expert_split(unit):
                n = len(range(rows)[sel])

                def pick(a: np.ndarray, e: int = e, sel: slice = sel) -> np.ndarray:
                    return a.reshape(lead[0], rows, a.shape[-1])[e, sel]  # -1 fails on 0 rows

                skip = e * rows * half if sel == slice(None) else None
                outs += _expert_module(f"{parent}.{e}.{leaf}", (n, half), pick, skip)
        return outs

    def bias_outputs(
        self, unit: QuantUnit, name: str, dtype: str, shape: tuple[int, ...]
    ) -> list[BiasOutput]:
        """The fused bias split per expert like its weight; values copied byte for byte."""
        parent = unit.base.rpartition(".")[0]
        outs: list[BiasOutput] = []
        for e in range(shape[0]):
            for leaf, sel in expert_split(unit):
                n = len(range(shape[1])[sel])

                def pick(a: np.ndarray, e: int = e, sel: slice = sel) -> np.ndarray:
                    return a[e, sel]

                outs.append((OutTensor(f"{parent}.{e}.{leaf}.bias", dtype, (n,)), pick))
        return outs

    def metadata_files(
        self, config: dict[str, Any], excluded: list[str]
    ) -> dict[str, dict[str, Any]]:
        old = config.get("quantization_config") or {}
        # compressed-tensors allows ``ignore: null`` or no ``ignore`` at all
        from_ct = old.get("quant_method") == "compressed-tensors"
        source_ignore = (old.get("ignore") or []) if from_ct else []
        section = quantization_config(excluded, source_ignore)
        return {"config.json": {**config, "quantization_config": section}}


FORMAT = CompressedTensors()
