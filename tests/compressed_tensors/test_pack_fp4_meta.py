"""Patch: pack NVFP4 weights on the meta device without torch.compile.

transformers (run_compressed=False) compresses the still-empty model on the meta device.
On torch 2.13 the `torch.compile(fullgraph=True)` packer of pristine 0.13.0 fails there
("RuntimeError when making fake tensor call"). A meta tensor has no values: only the
packed shape is needed.
"""

from __future__ import annotations

import torch
from compressed_tensors.compressors import ModelCompressor
from compressed_tensors.compressors.quantized_compressors.fp4_quantized import (
    pack_fp4_to_uint8,
)
from compressed_tensors.quantization import (
    QuantizationConfig,
    QuantizationStatus,
    apply_quantization_config,
    preset_name_to_scheme,
)

FORMAT = "nvfp4-pack-quantized"


class OneLinear(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(64, 16, bias=False)


def test_pack_fp4_on_meta_matches_real_packing():
    values = torch.tensor([0.0, 0.5, -1.0, 6.0]).repeat(8, 8)

    packed = pack_fp4_to_uint8(values)
    packed_meta = pack_fp4_to_uint8(values.to("meta"))

    assert packed_meta.device.type == "meta"
    assert (packed_meta.shape, packed_meta.dtype) == (packed.shape, packed.dtype)


def test_compress_model_on_meta_device():
    # the order of calls transformers' quantizer makes with run_compressed=False
    with torch.device("meta"):
        model = OneLinear()
    config = QuantizationConfig(
        config_groups={"group_0": preset_name_to_scheme("NVFP4", ["Linear"])},
        format=FORMAT,
        quantization_status=QuantizationStatus.COMPRESSED,
    )
    apply_quantization_config(model, config, run_compressed=False)

    ModelCompressor.from_pretrained_model(model, quantization_format=FORMAT).compress_model(model)

    packed = model.proj.weight_packed
    assert packed.device.type == "meta"
    assert (packed.dtype, tuple(packed.shape)) == (torch.uint8, (16, 32))
