"""``--format modelopt``: what ModelOpt 0.47's unified HF export writes for weight-only NVFP4.

Linear ``X.weight`` (out, in/2) U8, ``X.weight_scale`` (out, in/16) F8_E4M3,
``X.weight_scale_2`` () F32; fused gpt-oss experts keep the parameter name and the BMM layout
``(E, in/2, out)`` / ``(E, in/16, out)``. Metadata: ``hf_quant_config.json`` (``W4A16_NVFP4``)
plus ``convert_hf_quant_config_format``'s ``quantization_config`` in config.json.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fp4stack.checkpoint.cast import emit
from fp4stack.checkpoint.cast.convert import CastResult
from fp4stack.checkpoint.cast.emit import BiasOutput, Output
from fp4stack.checkpoint.cast.sink import Sink
from fp4stack.checkpoint.cast.source import QuantUnit
from fp4stack.checkpoint.safetensors_io import OutTensor

PRODUCER = {"name": "modelopt", "version": "0.47.0"}
QUANT_ALGO = "W4A16_NVFP4"


def hf_quant_config(excluded: list[str]) -> dict[str, Any]:
    """ModelOpt's hf_quant_config.json for a weight-only NVFP4 checkpoint."""
    return {
        "producer": dict(PRODUCER),
        "quantization": {
            "quant_algo": QUANT_ALGO,
            "kv_cache_quant_algo": None,
            "group_size": 16,
            "exclude_modules": list(excluded),
        },
    }


def quantization_config(excluded: list[str]) -> dict[str, Any]:
    """config.json's section, as ``convert_hf_quant_config_format`` makes it of the above."""
    return {
        "config_groups": {
            "group_0": {
                "weights": {"dynamic": False, "num_bits": 4, "type": "float", "group_size": 16},
                "targets": ["Linear"],
            }
        },
        "ignore": list(excluded),
        "quant_algo": QUANT_ALGO,
        "producer": dict(PRODUCER),
        "quant_method": "modelopt",
    }


def _scale_2(sink: Sink, offset: int, r: CastResult) -> None:
    sink.array(np.float32(r.tensor_scale), offset)


class ModelOpt:
    """Fused experts stay fused (one ``weight_scale_2`` per fused tensor)."""

    name = "modelopt"
    splits_experts = False

    def unit_outputs(self, unit: QuantUnit) -> list[Output]:
        *lead, rows, half = unit.packed_shape
        groups = half // 8
        if lead:  # fused experts, BMM layout (E, in, out)
            shape = unit.packed_shape
            return [
                (OutTensor(unit.base, "U8", (*lead, half, rows)),
                 lambda s, o, r: s.transposed(r.packed.reshape(shape), o)),
                (OutTensor(f"{unit.base}_weight_scale", "F8_E4M3", (*lead, groups, rows)),
                 lambda s, o, r: s.transposed(r.scales, o)),
                (OutTensor(f"{unit.base}_weight_scale_2", "F32", ()), _scale_2),
            ]  # fmt: skip
        mod = emit.module_of(unit)
        return [
            (OutTensor(f"{mod}.weight", "U8", (rows, half)), emit.packed),
            (OutTensor(f"{mod}.weight_scale", "F8_E4M3", (rows, groups)), emit.scales),
            (OutTensor(f"{mod}.weight_scale_2", "F32", ()), _scale_2),
        ]

    def bias_outputs(
        self, unit: QuantUnit, name: str, dtype: str, shape: tuple[int, ...]
    ) -> list[BiasOutput]:
        """The fused bias unchanged (the plan copies it in the kernel instead)."""
        return [(OutTensor(name, dtype, shape), lambda a: a)]

    def metadata_files(
        self, config: dict[str, Any], excluded: list[str]
    ) -> dict[str, dict[str, Any]]:
        return {
            "config.json": {**config, "quantization_config": quantization_config(excluded)},
            "hf_quant_config.json": hf_quant_config(excluded),
        }


FORMAT = ModelOpt()
