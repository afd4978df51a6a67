"""All-zero NVFP4 blocks get the same FP8 block scale on the static and dynamic export paths."""

from __future__ import annotations

import pytest
import torch
from modelopt.torch.quantization.nn import NVFP4StaticQuantizer, TensorQuantizer
from modelopt.torch.quantization.qtensor import NVFP4QTensor


def weight_with_zero_blocks(scale: float) -> torch.Tensor:
    weight = torch.randn(8, 64, generator=torch.Generator().manual_seed(0)) * scale
    weight[0, :16] = 0  # block (0, 0)
    weight[5, 48:] = 0  # block (5, 3)
    weight[7] = 0  # a whole row of zero blocks
    return weight


def static_quantizer(weight: torch.Tensor) -> NVFP4StaticQuantizer:
    quantizer = TensorQuantizer()
    quantizer.block_sizes = {-1: 16, "type": "static", "scale_bits": (4, 3)}
    quantizer.register_buffer("_amax", weight.reshape(-1, 16).abs().amax(-1, keepdim=True))
    return NVFP4StaticQuantizer.from_tensor_quantizer(quantizer, global_amax=weight.abs().max())


@pytest.mark.parametrize("magnitude", [1.0, 1e-3], ids=["unit", "small-global-amax"])
def test_zero_blocks_get_the_dynamic_scale_on_the_static_path(magnitude: float) -> None:
    weight = weight_with_zero_blocks(magnitude)
    zero_blocks = weight.reshape(8, 4, 16).abs().amax(-1) == 0
    assert zero_blocks.sum() == 6

    dynamic, scale_2 = NVFP4QTensor.get_weights_scaling_factor(weight, 16)
    static, static_scale_2 = NVFP4QTensor.get_weights_scaling_factor_from_quantizer(
        static_quantizer(weight), weight
    )

    assert static.dtype == dynamic.dtype == torch.float8_e4m3fn
    assert torch.equal(static_scale_2, scale_2)
    assert torch.all(dynamic.float()[zero_blocks] == 1.0)
    assert torch.equal(static.float()[zero_blocks], dynamic.float()[zero_blocks])
    assert torch.equal(static.float(), dynamic.float())


def test_all_zero_weight_has_finite_static_scales() -> None:
    weight = torch.zeros(4, 32)
    static, _ = NVFP4QTensor.get_weights_scaling_factor_from_quantizer(
        static_quantizer(weight), weight
    )
    assert torch.all(static.float() == 1.0)
