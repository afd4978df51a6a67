"""Do NVFP4 weights decompress into the dtype the model was loaded in (float32 here)?"""

from __future__ import annotations

import json
import sys

import torch
from compressed_tensors.compressors import ModelCompressor
from compressed_tensors.quantization import (
    QuantizationConfig,
    QuantizationStatus,
    apply_quantization_config,
    preset_name_to_scheme,
)

FORMAT = "nvfp4-pack-quantized"


def probe() -> tuple[bool, str]:
    """(affected, detail) of this interpreter's compressed-tensors."""
    model = torch.nn.Sequential(torch.nn.Linear(64, 16, bias=False)).to(torch.float32)
    config = QuantizationConfig(
        config_groups={"group_0": preset_name_to_scheme("NVFP4", ["Linear"])},
        format=FORMAT,
        quantization_status=QuantizationStatus.INITIALIZED,
    )
    apply_quantization_config(model, config)
    layer = model[0]
    weight = layer.weight.detach().float()
    global_scale = torch.tensor([448.0 * 6.0]) / weight.abs().max()
    group_max = weight.reshape(16, -1, 16).abs().amax(dim=-1)
    layer.weight_global_scale.data.copy_(global_scale)
    layer.weight_scale.data.copy_(
        (group_max / 6.0 * global_scale).to(torch.float8_e4m3fn).to(layer.weight_scale.dtype)
    )
    compressor = ModelCompressor.from_pretrained_model(model, quantization_format=FORMAT)
    compressor.compress_model(model)
    layer.weight_scale.data = layer.weight_scale.float()
    try:
        compressor.decompress_model(model)
    except Exception as error:
        return True, f"decompressing an NVFP4 float32 model fails: {type(error).__name__}: {error}"
    dtype = model[0].weight.dtype
    return dtype != torch.float32, f"an NVFP4 layer of a float32 model decompresses to {dtype}"


if __name__ == "__main__":
    affected, detail = probe()
    sys.stdout.write(json.dumps({"affected": affected, "detail": detail}) + "\n")
