"""NVFP4 export math runs on a machine without CUDA (CPU-only torch)."""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.skipif(
    torch.cuda.is_available(), reason="checks behaviour when no CUDA device is usable"
)


def test_hardware_checks_are_false_without_cuda() -> None:
    from modelopt.torch.quantization.backends.utils import fp4_compatible, fp8_compatible

    assert fp4_compatible() is False
    assert fp8_compatible() is False


def test_nvfp4_qtensor_round_trip_on_cpu() -> None:
    from modelopt.torch.quantization.qtensor import NVFP4QTensor

    w = torch.randn(32, 64, generator=torch.Generator().manual_seed(0)).to(torch.bfloat16)
    qtensor, scale, scale_2 = NVFP4QTensor.quantize(w, 16)
    assert qtensor._quantized_data.dtype == torch.uint8
    assert qtensor._quantized_data.shape == (32, 32)
    assert scale.dtype == torch.float8_e4m3fn and scale.shape == (32, 4)
    back = qtensor.dequantize(
        dtype=torch.float32, scale=scale, double_scale=scale_2, block_sizes={-1: 16}
    )
    rel = (back - w.float()).norm() / w.float().norm()
    assert rel < 0.15, f"NVFP4 round trip relative error {rel:.3f}"
