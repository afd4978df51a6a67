"""Patch: decompress NVFP4 weights into the dtype the model was loaded in.

Pristine 0.13.0 and 0.20.1 always decompress NVFP4 to bfloat16, so a model loaded in float32
or float16 fails at its first forward: `expected m1 and m2 to have the same dtype`.
"""

from __future__ import annotations

import pytest
import torch
from compressed_tensors.compressors import ModelCompressor, NVFP4PackedCompressor
from compressed_tensors.quantization import (
    QuantizationConfig,
    QuantizationStatus,
    apply_quantization_config,
    preset_name_to_scheme,
)

try:  # 0.14 and later
    from compressed_tensors.compressors.nvfp4.helpers import unpack_fp4_from_uint8
except ImportError:  # 0.13.0
    from compressed_tensors.compressors.quantized_compressors.fp4_quantized import (
        unpack_fp4_from_uint8,
    )

FORMAT = "nvfp4-pack-quantized"
DTYPES = [torch.float32, torch.float16]
# CompressedLinear (run_compressed=True) raises "no longer supported" from 0.20 on
HAS_COMPRESSED_LINEAR = hasattr(NVFP4PackedCompressor, "compress_weight")


class OneLinear(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(64, 16, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


def nvfp4_config(status: QuantizationStatus) -> QuantizationConfig:
    return QuantizationConfig(
        config_groups={"group_0": preset_name_to_scheme("NVFP4", ["Linear"])},
        format=FORMAT,
        quantization_status=status,
    )


def fill_nvfp4_qparams(module: torch.nn.Module, weight: torch.Tensor) -> None:
    """Write global and group scales; the group scales are fp8 values in the module's dtype."""
    global_scale = torch.tensor([448.0 * 6.0]) / weight.abs().max()
    group_max = weight.reshape(weight.shape[0], -1, 16).abs().amax(dim=-1)
    scale = (group_max / 6.0 * global_scale).to(torch.float8_e4m3fn)
    module.weight_global_scale.data.copy_(global_scale)
    module.weight_scale.data.copy_(scale.to(module.weight_scale.dtype))


def expected_weight(module: torch.nn.Module) -> torch.Tensor:
    """Dequantize in float32: fp4 value * (group scale / global scale)."""
    rows, half_cols = module.weight_packed.shape
    fp4 = unpack_fp4_from_uint8(module.weight_packed, rows, half_cols * 2, dtype=torch.float32)
    per_group = module.weight_scale.float() / module.weight_global_scale.float()
    return fp4 * per_group.repeat_interleave(16, dim=1)


@pytest.mark.skipif(not HAS_COMPRESSED_LINEAR, reason="no CompressedLinear in this release")
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_compressed_linear_decompresses_into_load_dtype(dtype):
    from compressed_tensors.linear.compressed_linear import CompressedLinear

    torch.manual_seed(0)
    weight = torch.randn(16, 64)
    model = OneLinear().to(dtype)
    apply_quantization_config(
        model, nvfp4_config(QuantizationStatus.COMPRESSED), run_compressed=True
    )
    proj = model.proj
    assert isinstance(proj, CompressedLinear)
    fill_nvfp4_qparams(proj, weight)
    proj.weight_packed.data.copy_(
        NVFP4PackedCompressor().compress_weight(
            weight=weight,
            scale=proj.weight_scale.float(),
            global_scale=proj.weight_global_scale,
            quantization_args=proj.quantization_scheme.weights,
        )["weight_packed"]
    )
    proj.input_global_scale.data.fill_(1.0)

    out = proj(torch.randn(2, 64).to(dtype))

    assert (proj.weight.dtype, out.dtype) == (dtype, dtype)
    torch.testing.assert_close(proj.weight.float(), expected_weight(proj).to(dtype).float())


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_decompress_model_restores_load_dtype(dtype):
    torch.manual_seed(0)
    model = OneLinear().to(dtype)
    apply_quantization_config(model, nvfp4_config(QuantizationStatus.INITIALIZED))
    fill_nvfp4_qparams(model.proj, model.proj.weight.float())
    compressor = ModelCompressor.from_pretrained_model(model, quantization_format=FORMAT)
    compressor.compress_model(model)
    # a float copy of the fp8 scale (same values) keeps this test about the dtype only
    model.proj.weight_scale.data = model.proj.weight_scale.float()
    expected = expected_weight(model.proj)

    compressor.decompress_model(model)

    assert model.proj.weight.dtype == dtype
    torch.testing.assert_close(model.proj.weight, expected.to(dtype), rtol=0, atol=0)


@pytest.mark.skipif(
    not hasattr(ModelCompressor, "add_decompress_hook"),
    reason="this release does not decompress a compressed model on its first forward",
)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_forward_after_compress_model_runs_in_load_dtype(dtype):
    """The transformers load path: compress the model, then its first forward decompresses."""
    torch.manual_seed(0)
    model = OneLinear().to(dtype)
    apply_quantization_config(model, nvfp4_config(QuantizationStatus.INITIALIZED))
    fill_nvfp4_qparams(model.proj, model.proj.weight.float())
    model.proj.input_global_scale.data.fill_(1.0)
    compressor = ModelCompressor.from_pretrained_model(model, quantization_format=FORMAT)
    compressor.compress_model(model)

    with torch.no_grad():
        out = model(torch.randn(2, 64).to(dtype))

    assert (model.proj.weight.dtype, out.dtype) == (dtype, dtype)
