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
"""`dequantize=True` dequantizes the weights and keeps the checkpoint's activation quantization."""

import json

import pytest
import torch
from safetensors.torch import save_file

from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM
from transformers.utils.quantization_config import CompressedTensorsConfig


pytest.importorskip("compressed_tensors")

NVFP4 = {"num_bits": 4, "type": "float", "strategy": "tensor_group", "group_size": 16, "symmetric": True}
PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def write_w4a4_checkpoint(path):
    """A one-layer Llama whose Linear layers are NVFP4 weights and NVFP4 activations (W4A4),
    with a static input global scale each, as llm-compressor writes them."""
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=64,
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=64,
    )
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    state = {}
    for name, tensor in model.state_dict().items():
        module = name.removesuffix(".weight")
        if not module.endswith(PROJECTIONS):
            state[name] = tensor
            continue
        out_features, in_features = tensor.shape
        state[f"{module}.weight_packed"] = torch.randint(0, 256, (out_features, in_features // 2), dtype=torch.uint8)
        scale = torch.rand(out_features, in_features // 16) * 4 + 0.5
        state[f"{module}.weight_scale"] = scale.to(torch.float8_e4m3fn)
        state[f"{module}.weight_global_scale"] = torch.tensor([448.0 * 6 / 0.05])
        # a coarse input scale, so quantizing the activations visibly changes the logits
        state[f"{module}.input_global_scale"] = torch.tensor([448.0 * 6 / 50.0])
    save_file(state, path / "model.safetensors", metadata={"format": "pt"})
    config_dict = config.to_dict()
    config_dict["quantization_config"] = {
        "quant_method": "compressed-tensors",
        "format": "nvfp4-pack-quantized",
        "quantization_status": "compressed",
        "config_groups": {
            "group_0": {
                "targets": ["Linear"],
                "weights": NVFP4,
                "input_activations": {**NVFP4, "dynamic": "local"},
                "format": "nvfp4-pack-quantized",
            }
        },
        "ignore": ["lm_head"],
    }
    (path / "config.json").write_text(json.dumps(config_dict))


def test_dequantize_keeps_the_activation_quantization_of_the_checkpoint(tmp_path):
    write_w4a4_checkpoint(tmp_path)
    input_ids = torch.arange(1, 17).unsqueeze(0)
    logits = {}
    for dequantize in (False, True):
        model, info = AutoModelForCausalLM.from_pretrained(
            tmp_path,
            dtype=torch.bfloat16,
            output_loading_info=True,
            quantization_config=CompressedTensorsConfig(dequantize=dequantize),
        )
        assert not info["unexpected_keys"] and not info["missing_keys"]
        with torch.no_grad():
            logits[dequantize] = model(input_ids).logits

    # the compressed model quantizes activations as the producer did; the dequantized one too
    torch.testing.assert_close(logits[True], logits[False], rtol=0, atol=0)
