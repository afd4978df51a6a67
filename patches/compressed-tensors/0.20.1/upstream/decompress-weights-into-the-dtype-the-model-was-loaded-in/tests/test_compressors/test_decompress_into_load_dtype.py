# SPDX-License-Identifier: Apache-2.0
# SPDX-FileCopyrightText: Copyright contributors to the vLLM project

import pytest
import torch
from compressed_tensors.compressors import ModelCompressor
from compressed_tensors.quantization import (
    QuantizationConfig,
    QuantizationStatus,
    apply_quantization_config,
    preset_name_to_scheme,
)


NVFP4_FORMAT = "nvfp4-pack-quantized"


def _nvfp4_model(dtype):
    model = torch.nn.Sequential(torch.nn.Linear(64, 32, bias=False)).to(dtype)
    config = QuantizationConfig(
        config_groups={"group_0": preset_name_to_scheme("NVFP4", ["Linear"])},
        format=NVFP4_FORMAT,
        quantization_status=QuantizationStatus.INITIALIZED,
    )
    apply_quantization_config(model, config)
    linear = model[0]
    # calibrated qparams: one global scale, one fp8 scale per group of 16
    weight = linear.weight.float()
    global_scale = 448.0 * 6.0 / weight.abs().max()
    group_max = weight.reshape(32, 4, 16).abs().amax(dim=-1)
    scale = (group_max / 6.0 * global_scale).to(torch.float8_e4m3fn)
    linear.weight_global_scale.data.fill_(global_scale.item())
    linear.weight_scale.data.copy_(scale.to(linear.weight_scale.dtype))
    return model


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_decompress_model_returns_weights_in_the_load_dtype(dtype):
    torch.manual_seed(0)
    model = _nvfp4_model(dtype)
    compressor = ModelCompressor.from_pretrained_model(
        model, quantization_format=NVFP4_FORMAT
    )

    compressor.compress_model(model)
    compressor.decompress_model(model)

    assert model[0].weight.dtype == dtype
    # the first forward multiplies activations of the load dtype with the weight
    assert model(torch.randn(2, 64, dtype=dtype)).dtype == dtype
