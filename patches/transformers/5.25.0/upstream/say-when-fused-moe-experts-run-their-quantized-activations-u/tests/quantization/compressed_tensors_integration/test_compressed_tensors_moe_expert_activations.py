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
"""Fused MoE experts whose scheme quantizes activations say that theirs run unquantized."""

import json

import pytest
import torch
from safetensors.torch import save_file

from transformers import AutoModelForCausalLM, Qwen3MoeConfig, Qwen3MoeForCausalLM
from transformers.testing_utils import CaptureLogger
from transformers.utils import logging


pytest.importorskip("compressed_tensors")

NVFP4 = {"num_bits": 4, "type": "float", "strategy": "tensor_group", "group_size": 16, "symmetric": True}


def write_w4a4_moe_checkpoint(path):
    """A one-layer Qwen3-MoE whose experts are NVFP4 weights and activations (W4A4), with a
    static input global scale per expert projection, as llm-compressor writes them."""
    torch.manual_seed(0)
    config = Qwen3MoeConfig(
        vocab_size=64,
        hidden_size=128,
        intermediate_size=128,
        moe_intermediate_size=128,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=64,
        num_experts=2,
        num_experts_per_tok=1,
    )
    model = Qwen3MoeForCausalLM(config).to(torch.bfloat16)
    state = {k: v for k, v in model.state_dict().items() if ".experts." not in k}
    for expert in range(2):
        for projection in ("gate_proj", "up_proj", "down_proj"):
            prefix = f"model.layers.0.mlp.experts.{expert}.{projection}"
            state[f"{prefix}.weight_packed"] = torch.randint(0, 256, (128, 64), dtype=torch.uint8)
            state[f"{prefix}.weight_scale"] = torch.ones(128, 8).to(torch.float8_e4m3fn)
            state[f"{prefix}.weight_global_scale"] = torch.tensor([448.0 * 6])
            state[f"{prefix}.input_global_scale"] = torch.tensor([448.0 * 6 / 4.0])
    save_file(state, path / "model.safetensors", metadata={"format": "pt"})
    config_dict = config.to_dict()
    config_dict["quantization_config"] = {
        "quant_method": "compressed-tensors",
        "format": "nvfp4-pack-quantized",
        "quantization_status": "compressed",
        "config_groups": {
            "group_0": {
                "targets": ["re:.*mlp\\.experts\\..*"],
                "weights": NVFP4,
                "input_activations": {**NVFP4, "dynamic": "local"},
                "format": "nvfp4-pack-quantized",
            }
        },
        "ignore": [],
    }
    (path / "config.json").write_text(json.dumps(config_dict))


def test_fused_experts_say_their_activations_run_unquantized(tmp_path):
    write_w4a4_moe_checkpoint(tmp_path)
    logger = logging.get_logger("transformers.quantizers.quantizer_compressed_tensors")
    with CaptureLogger(logger) as captured:
        _, info = AutoModelForCausalLM.from_pretrained(tmp_path, dtype=torch.bfloat16, output_loading_info=True)

    assert "unquantized" in captured.out and "experts" in captured.out
    # the experts' input scales are left unused on purpose, not reported as unexpected
    assert not info["unexpected_keys"] and not info["missing_keys"]
