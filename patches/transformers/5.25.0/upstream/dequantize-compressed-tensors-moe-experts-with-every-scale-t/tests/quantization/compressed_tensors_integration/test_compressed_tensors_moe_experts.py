# Copyright 2026 The HuggingFace Team. All rights reserved.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
"""Compressed-tensors MoE experts are dequantized with every scale the checkpoint stores."""

import json

import pytest
import torch
from safetensors.torch import save_file

from transformers import AutoModelForCausalLM, Qwen3MoeConfig, Qwen3MoeForCausalLM


pytest.importorskip("compressed_tensors")

E2M1 = torch.tensor([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0])
EXPERTS = 2
HIDDEN, INTERMEDIATE = 128, 256
SHAPES = {"gate_proj": (INTERMEDIATE, HIDDEN), "up_proj": (INTERMEDIATE, HIDDEN), "down_proj": (HIDDEN, INTERMEDIATE)}
NVFP4_WEIGHTS = {"num_bits": 4, "type": "float", "strategy": "tensor_group", "group_size": 16, "symmetric": True}
FP8_BLOCK_WEIGHTS = {
    "num_bits": 8,
    "type": "float",
    "strategy": "block",
    "block_structure": [128, 128],
    "symmetric": True,
}


def nvfp4_expert(shape):
    """Stored tensors of one NVFP4 projection, and its exact float32 weight."""
    out_features, in_features = shape
    codes = torch.randint(0, 256, (out_features, in_features // 2), dtype=torch.uint8)
    scale = (torch.rand(out_features, in_features // 16) * 4 + 0.5).to(torch.float8_e4m3fn)
    global_scale = torch.tensor([448.0 * 6 / 3.0])
    nibbles = torch.stack([codes & 0x0F, codes >> 4], dim=-1).reshape(out_features, -1)
    values = E2M1[(nibbles & 0x07).long()] * torch.where(nibbles >= 8, -1.0, 1.0)
    weight = values * (scale.float() / global_scale).repeat_interleave(16, dim=1)
    tensors = {"weight_packed": codes, "weight_scale": scale, "weight_global_scale": global_scale}
    return tensors, weight


def fp8_block_expert(shape):
    """Stored tensors of one 128x128-block FP8 projection, and its bfloat16 weight."""
    out_features, in_features = shape
    codes = (torch.randn(out_features, in_features) * 100).to(torch.float8_e4m3fn)
    scale = (torch.rand(out_features // 128, in_features // 128) + 0.5).to(torch.bfloat16) / 1000
    blocks = scale.float().repeat_interleave(128, 0).repeat_interleave(128, 1)
    weight = (codes.float() * blocks).to(torch.bfloat16).float()
    return {"weight": codes, "weight_scale": scale}, weight


def write_moe_checkpoint(path, scheme):
    """A one-layer Qwen3-MoE whose experts are compressed-tensors `scheme`, the rest dense."""
    torch.manual_seed(0)
    config = Qwen3MoeConfig(
        vocab_size=64,
        hidden_size=HIDDEN,
        intermediate_size=INTERMEDIATE,
        moe_intermediate_size=INTERMEDIATE,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=64,
        num_experts=EXPERTS,
        num_experts_per_tok=1,
    )
    model = Qwen3MoeForCausalLM(config).to(torch.bfloat16)
    state = {k: v for k, v in model.state_dict().items() if ".experts." not in k}
    make, weights, format = {
        "nvfp4": (nvfp4_expert, NVFP4_WEIGHTS, "nvfp4-pack-quantized"),
        "fp8_block": (fp8_block_expert, FP8_BLOCK_WEIGHTS, "float-quantized"),
    }[scheme]
    expected = {}
    for expert in range(EXPERTS):
        for projection, shape in SHAPES.items():
            prefix = f"model.layers.0.mlp.experts.{expert}.{projection}"
            tensors, expected[prefix] = make(shape)
            state.update({f"{prefix}.{name}": tensor for name, tensor in tensors.items()})
    save_file(state, path / "model.safetensors", metadata={"format": "pt"})
    config_dict = config.to_dict()
    config_dict["quantization_config"] = {
        "quant_method": "compressed-tensors",
        "format": format,
        "quantization_status": "compressed",
        "config_groups": {"group_0": {"targets": ["re:.*mlp\\.experts\\..*"], "weights": weights, "format": format}},
        "ignore": [],
    }
    (path / "config.json").write_text(json.dumps(config_dict))
    return expected


@pytest.mark.parametrize("scheme", ["nvfp4", "fp8_block"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_moe_experts_dequantize_with_all_their_scales_in_the_load_dtype(tmp_path, scheme, dtype):
    expected = write_moe_checkpoint(tmp_path, scheme)
    model, info = AutoModelForCausalLM.from_pretrained(tmp_path, dtype=dtype, output_loading_info=True)

    assert not info["unexpected_keys"] and not info["missing_keys"]
    experts = model.model.layers[0].mlp.experts
    assert experts.gate_up_proj.dtype == dtype and experts.down_proj.dtype == dtype
    for expert in range(EXPERTS):
        prefix = f"model.layers.0.mlp.experts.{expert}"
        gate_up = torch.cat([expected[f"{prefix}.gate_proj"], expected[f"{prefix}.up_proj"]])
        down = expected[f"{prefix}.down_proj"]
        # exact in float32; in bfloat16 within the one rounding of each step
        tolerance = 0.0 if dtype == torch.float32 else 2**-7
        torch.testing.assert_close(experts.gate_up_proj[expert].float(), gate_up, rtol=tolerance, atol=0)
        torch.testing.assert_close(experts.down_proj[expert].float(), down, rtol=tolerance, atol=0)
