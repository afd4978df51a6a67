"""Patch: do (de)quantization arithmetic on fp8 scales in a non-fp8 dtype.

NVFP4 group scales are float8_e4m3fn. Pristine 0.13.0 divides them by the float32 (or
model-dtype) global scale directly, and torch refuses: `Promotion for Float8 Types is not
supported` (run_compressed=False, at decompression and at the fake-quant forward).
"""

from __future__ import annotations

import torch
from compressed_tensors.quantization import preset_name_to_scheme
from compressed_tensors.quantization.lifecycle.forward import dequantize, quantize

FP4_VALUES = torch.tensor([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0])


def fp4_codes(rows: int, cols: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    magnitudes = FP4_VALUES[torch.randint(0, 8, (rows, cols), generator=generator)]
    signs = torch.where(torch.rand(rows, cols, generator=generator) < 0.5, -1.0, 1.0)
    return magnitudes * signs


def group_scales(rows: int, groups: int) -> torch.Tensor:
    values = torch.linspace(0.25, 400.0, rows * groups).reshape(rows, groups)
    return values.to(torch.float8_e4m3fn)


def test_dequantize_fp8_scale_with_global_scale():
    x_q = fp4_codes(8, 32)
    scale = group_scales(8, 2)
    global_scale = torch.tensor([1234.5])
    args = preset_name_to_scheme("NVFP4", ["Linear"]).weights

    out = dequantize(
        x_q=x_q, scale=scale, global_scale=global_scale, args=args, dtype=torch.float32
    )

    per_group = scale.float() / global_scale
    expected = x_q * per_group.repeat_interleave(16, dim=1)
    torch.testing.assert_close(out, expected, rtol=1e-6, atol=0)


def test_quantize_fp8_scale_with_global_scale():
    x_q = fp4_codes(8, 32)
    scale = group_scales(8, 2)
    global_scale = torch.tensor([1234.5])
    args = preset_name_to_scheme("NVFP4", ["Linear"]).weights
    x = x_q * (scale.float() / global_scale).repeat_interleave(16, dim=1)

    out = quantize(x=x, scale=scale, zero_point=None, args=args, global_scale=global_scale)

    torch.testing.assert_close(out, x_q, rtol=0, atol=0)
