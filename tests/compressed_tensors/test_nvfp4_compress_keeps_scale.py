"""Patch: keep the NVFP4 weight_scale of modules that have no dense weight.

transformers (run_compressed=True) turns each quantized Linear into a CompressedLinear,
which has `weight_packed` but no `weight`, and then calls `compress_model`. Pristine 0.13.0
drops every `weight_scale` for NVFP4 there, so the first forward raises
`KeyError: 'weight_scale'`.
"""

from __future__ import annotations

import torch
from compressed_tensors.compressors import ModelCompressor, NVFP4PackedCompressor
from compressed_tensors.linear.compressed_linear import CompressedLinear
from compressed_tensors.quantization import (
    QuantizationConfig,
    QuantizationScheme,
    QuantizationStatus,
    apply_quantization_config,
    preset_name_to_scheme,
)

FORMAT = "nvfp4-pack-quantized"


class OneLinear(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(32, 16, bias=False)


def nvfp4_config(status: QuantizationStatus) -> QuantizationConfig:
    scheme = preset_name_to_scheme("NVFP4", ["Linear"])
    return QuantizationConfig(
        config_groups={"group_0": scheme},
        format=FORMAT,
        quantization_status=status,
    )


def test_compress_keeps_scale_of_module_without_weight():
    scheme: QuantizationScheme = preset_name_to_scheme("NVFP4", ["Linear"])
    scale = torch.full((16, 2), 0.5).to(torch.float8_e4m3fn)
    state = {
        "proj.weight_packed": torch.zeros(16, 16, dtype=torch.uint8),
        "proj.weight_scale": scale,
        "proj.weight_global_scale": torch.ones(1),
    }

    compressed = NVFP4PackedCompressor().compress(state, names_to_scheme={"proj": scheme})

    assert "proj.weight_scale" in compressed
    assert torch.equal(compressed["proj.weight_scale"].float(), scale.float())


def test_compress_model_keeps_scale_on_compressed_linear():
    # the order of calls transformers' quantizer makes with run_compressed=True
    model = OneLinear()
    apply_quantization_config(
        model, nvfp4_config(QuantizationStatus.COMPRESSED), run_compressed=True
    )
    assert isinstance(model.proj, CompressedLinear)

    compressor = ModelCompressor.from_pretrained_model(model, quantization_format=FORMAT)
    compressor.compress_model(model)

    names = {name for name, _ in model.proj.named_parameters()}
    assert {"weight_packed", "weight_scale", "weight_global_scale"} <= names
