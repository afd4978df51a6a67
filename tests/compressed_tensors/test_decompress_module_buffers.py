"""Patch: hand `decompress_module` the module's buffers as well as its parameters.

Defensive: the loaders we measured register every qparam as a parameter, but a loader that
registers a scale as a buffer made pristine 0.13.0 drop it (`KeyError: 'weight_scale'`).
"""

from __future__ import annotations

import torch
from compressed_tensors.compressors import NVFP4PackedCompressor
from compressed_tensors.quantization import QuantizationScheme, preset_name_to_scheme


def compressed_nvfp4(rows: int, cols: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    weight = torch.randn(rows, cols)
    scheme = preset_name_to_scheme("NVFP4", ["Linear"])
    global_scale = torch.tensor([448.0 * 6.0]) / weight.abs().max()
    group_max = weight.reshape(rows, -1, 16).abs().amax(dim=-1)
    scale = (group_max / 6.0 * global_scale).to(torch.float8_e4m3fn).float()
    data = NVFP4PackedCompressor().compress_weight(
        weight=weight,
        scale=scale,
        global_scale=global_scale,
        quantization_args=scheme.weights,
    )
    # a float32 copy of the fp8 scale (same values) keeps this test about buffers only
    data["weight_scale"] = data["weight_scale"].float()
    data["weight_global_scale"] = global_scale
    return data


class ScaleAsBuffer(torch.nn.Module):
    def __init__(self, data: dict[str, torch.Tensor], scheme: QuantizationScheme) -> None:
        super().__init__()
        self.quantization_scheme = scheme
        for name in ("weight_packed", "weight_global_scale"):
            self.register_parameter(name, torch.nn.Parameter(data[name], requires_grad=False))
        self.register_buffer("weight_scale", data["weight_scale"])


def test_decompress_module_reads_scale_from_buffer():
    scheme = preset_name_to_scheme("NVFP4", ["Linear"])
    data = compressed_nvfp4(16, 64)
    module = ScaleAsBuffer(data, scheme)
    compressor = NVFP4PackedCompressor()

    weight = compressor.decompress_module(module)

    expected = compressor.decompress_weight(data, scheme.weights)
    assert weight is not None
    torch.testing.assert_close(weight, expected, rtol=0, atol=0)
