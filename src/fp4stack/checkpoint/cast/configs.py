"""The quantization sections of config.json (and hf_quant_config.json) for each format.

modelopt: what ModelOpt 0.47's ``export_hf_checkpoint`` writes for weight-only NVFP4
(``W4A16_NVFP4``): ``hf_quant_config.json`` plus ``convert_hf_quant_config_format``'s
``quantization_config``. compressed-tensors: ``QuantizationConfig`` with the ``NVFP4A16``
preset and ``format: nvfp4-pack-quantized``, as ``model_dump`` serializes it.
"""

from __future__ import annotations

from typing import Any

from fp4stack.checkpoint.cast.formats import MODELOPT

MODELOPT_PRODUCER = {"name": "modelopt", "version": "0.47.0"}
QUANT_ALGO = "W4A16_NVFP4"


def hf_quant_config(excluded: list[str]) -> dict[str, Any]:
    """ModelOpt's hf_quant_config.json for a weight-only NVFP4 checkpoint."""
    return {
        "producer": dict(MODELOPT_PRODUCER),
        "quantization": {
            "quant_algo": QUANT_ALGO,
            "kv_cache_quant_algo": None,
            "group_size": 16,
            "exclude_modules": list(excluded),
        },
    }


def _modelopt_section(excluded: list[str]) -> dict[str, Any]:
    return {
        "config_groups": {
            "group_0": {
                "weights": {"dynamic": False, "num_bits": 4, "type": "float", "group_size": 16},
                "targets": ["Linear"],
            }
        },
        "ignore": list(excluded),
        "quant_algo": QUANT_ALGO,
        "producer": dict(MODELOPT_PRODUCER),
        "quant_method": "modelopt",
    }


def _ct_section(excluded: list[str], source_ignore: list[str]) -> dict[str, Any]:
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


def output_config(config: dict[str, Any], fmt: str, excluded: list[str]) -> dict[str, Any]:
    """config.json with its quantization_config replaced; every other key kept in order."""
    old = config.get("quantization_config") or {}
    # compressed-tensors allows ``ignore: null`` or no ``ignore`` at all
    from_ct = old.get("quant_method") == "compressed-tensors"
    source_ignore = (old.get("ignore") or []) if from_ct else []
    section = (
        _modelopt_section(excluded) if fmt == MODELOPT else _ct_section(excluded, source_ignore)
    )
    return {**config, "quantization_config": section}
