"""Static-block NVFP4 (algorithm ``max``) quantization and HF export of tiny local models.

Models are built from small random configs (no Hub access). The export runs on CPU
through the pure-torch ``NVFP4QTensor`` path; tensors are decoded here from the
checkpoint bytes (E2M1 nibbles, low nibble first, times FP8 block scale times FP32
per-tensor scale) and compared with the original weights.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import modelopt.torch.quantization as mtq
import pytest
import torch
import transformers
from modelopt.torch.export import export_hf_checkpoint
from modelopt.torch.quantization.nn import NVFP4StaticQuantizer
from safetensors.torch import load_file

E2M1_BY_CODE = torch.tensor(
    [0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6], dtype=torch.float32
)


def static_nvfp4_weight_only_cfg(distributed_sync: bool = True) -> dict:
    cfg = copy.deepcopy(mtq.NVFP4_W4A4_WEIGHT_MSE_FP8_SWEEP_CFG)
    cfg["quant_cfg"] = [
        e for e in cfg["quant_cfg"] if e.get("quantizer_name") != "*input_quantizer"
    ]
    cfg["algorithm"] = {"method": "max", "distributed_sync": distributed_sync}
    return cfg


# One decoder layer, small enough for a CPU test; the MoE model below adds its experts.
TINY_DECODER = {
    "hidden_size": 64,
    "intermediate_size": 64,
    "num_hidden_layers": 1,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,
    "vocab_size": 128,
}


def tiny_llama() -> torch.nn.Module:
    torch.manual_seed(0)
    config = transformers.LlamaConfig(**TINY_DECODER, architectures=["LlamaForCausalLM"])
    return transformers.LlamaForCausalLM(config).to(torch.bfloat16)


def decode_nvfp4(packed: torch.Tensor, scale: torch.Tensor, scale_2: torch.Tensor) -> torch.Tensor:
    """Decode row-major NVFP4 bytes (..., K/2) with block scales (..., K/16)."""
    codes = torch.stack([packed & 0xF, packed >> 4], dim=-1).reshape(*packed.shape[:-1], -1)
    block_scale = scale.float().repeat_interleave(codes.shape[-1] // scale.shape[-1], dim=-1)
    return E2M1_BY_CODE[codes.long()] * block_scale * scale_2.float()


def relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    return ((got - want.float()).norm() / want.float().norm()).item()


def export(model: torch.nn.Module, tmp_path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    export_hf_checkpoint(model, export_dir=tmp_path)
    tensors = load_file(str(tmp_path / "model.safetensors"))
    return tensors, json.loads((tmp_path / "hf_quant_config.json").read_text())


@pytest.mark.parametrize("distributed_sync", [True, False], ids=["sync", "no-sync"])
def test_max_calibrate_promotes_static_weight_quantizers(distributed_sync: bool) -> None:
    model = tiny_llama()
    mtq.quantize(model, static_nvfp4_weight_only_cfg(distributed_sync), forward_loop=None)
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    quantizers = [m.weight_quantizer for m in linears if m.weight_quantizer.is_enabled]
    assert len(quantizers) == 7  # q, k, v, o, gate, up, down; lm_head stays unquantized
    for q in quantizers:
        assert isinstance(q, NVFP4StaticQuantizer), type(q).__name__
        assert q.global_amax is not None
        # at least its own block maximum (later releases unify it across q/k/v, gate/up)
        assert q.global_amax.float() >= q._amax.float().max()


def test_static_max_llama_exports(tmp_path: Path) -> None:
    model = tiny_llama()
    original = model.model.layers[0].self_attn.q_proj.weight.detach().clone()
    mtq.quantize(model, static_nvfp4_weight_only_cfg(), forward_loop=None)
    tensors, quant_config = export(model, tmp_path)

    assert quant_config["quantization"]["group_size"] == 16
    assert "NVFP4" in quant_config["quantization"]["quant_algo"]
    prefix = "model.layers.0.self_attn.q_proj."
    packed, scale = tensors[prefix + "weight"], tensors[prefix + "weight_scale"]
    scale_2 = tensors[prefix + "weight_scale_2"]
    assert packed.dtype == torch.uint8 and packed.shape == (64, 32)
    assert scale.dtype == torch.float8_e4m3fn and scale.shape == (64, 4)
    assert scale_2.dtype == torch.float32 and scale_2.shape == ()
    assert relative_error(decode_nvfp4(packed, scale, scale_2), original) < 0.15


def tiny_gpt_oss() -> torch.nn.Module:
    torch.manual_seed(0)
    config = transformers.GptOssConfig(
        **TINY_DECODER,
        num_local_experts=4,
        num_experts_per_tok=2,
        layer_types=["full_attention"],
        architectures=["GptOssForCausalLM"],
    )
    return transformers.GptOssForCausalLM(config).to(torch.bfloat16)


def pin_power_of_two_amax(quantizer: NVFP4StaticQuantizer) -> torch.Tensor:
    """Pin per-block amax to 6 * 2**k >= the calibrated one, and global amax to their max.

    Every FP8 block scale is then 448 * 2**(k - k_max), exact in E4M3, and a block's
    dequant step is exactly 2**k; an export that recomputed block maxima from the
    weight would produce different scales.
    """
    exponent = torch.ceil(torch.log2(quantizer._amax.float() / 6.0))
    quantizer._amax = (6.0 * torch.exp2(exponent)).to(quantizer._amax.dtype)
    quantizer.global_amax = quantizer._amax.float().max()
    return exponent


def test_static_max_gpt_oss_experts_export_pinned_amax(tmp_path: Path) -> None:
    model = tiny_gpt_oss()
    experts = model.model.layers[0].mlp.experts
    original = {
        n: getattr(experts, n).detach().float().clone() for n in ("gate_up_proj", "down_proj")
    }
    mtq.quantize(model, static_nvfp4_weight_only_cfg(), forward_loop=None)
    exponents = {}
    for name in original:
        quantizer = getattr(experts, f"{name}_weight_quantizer")
        assert isinstance(quantizer, NVFP4StaticQuantizer)
        exponents[name] = pin_power_of_two_amax(quantizer)

    tensors, _ = export(model, tmp_path)

    for name, weight in original.items():  # weight: (E, in, out), BMM layout
        num_experts, fan_in, fan_out = weight.shape
        key = f"model.layers.0.mlp.experts.{name}"
        packed, scale = tensors[key], tensors[key + "_weight_scale"]
        scale_2 = tensors[key + "_weight_scale_2"]
        # BMM layout kept; FP4 pairs and blocks of 16 run along `in` (dim -2).
        assert packed.dtype == torch.uint8 and packed.shape == (num_experts, fan_in // 2, fan_out)
        assert scale.dtype == torch.float8_e4m3fn
        assert scale.shape == (num_experts, fan_in // 16, fan_out)
        k = exponents[name].reshape(num_experts, fan_out, fan_in // 16)
        assert torch.equal(scale_2, torch.exp2(k.max()) / 448.0)
        assert torch.equal(scale.float().transpose(-1, -2), 448.0 * torch.exp2(k - k.max()))

        decoded = decode_nvfp4(packed.transpose(-1, -2), scale.transpose(-1, -2), scale_2)
        assert relative_error(decoded, weight.transpose(-1, -2)) < 0.2


def _quantizer_with_amax(amax: torch.Tensor | None) -> torch.nn.Module:
    from modelopt.torch.quantization.nn import TensorQuantizer

    quantizer = TensorQuantizer()
    if amax is not None:
        quantizer.register_buffer("_amax", amax)
    return quantizer


def test_set_expert_quantizer_amax_mixed_per_block_shapes() -> None:
    from modelopt.torch.export.layer_utils import set_expert_quantizer_amax

    experts = torch.nn.Module()
    experts.gate_up_proj_weight_quantizer = _quantizer_with_amax(torch.full((32, 1), 2.0))
    experts.down_proj_weight_quantizer = _quantizer_with_amax(torch.full((16, 1), 3.0))
    experts.up_proj_weight_quantizer = _quantizer_with_amax(None)
    attrs = [f"{p}_weight_quantizer" for p in ("gate_up_proj", "down_proj", "up_proj")]

    with pytest.warns(UserWarning, match="up_proj_weight_quantizer"):
        uncalibrated = set_expert_quantizer_amax(experts, attrs)

    assert uncalibrated == [experts]
    assert torch.equal(experts.up_proj_weight_quantizer.amax, torch.tensor(3.0))
    assert torch.equal(experts.gate_up_proj_weight_quantizer.amax, torch.full((32, 1), 2.0))


def test_set_expert_quantizer_amax_zero_per_block_and_meta() -> None:
    from modelopt.torch.export.layer_utils import set_expert_quantizer_amax

    experts = torch.nn.Module()
    experts.gate_up_proj_weight_quantizer = _quantizer_with_amax(torch.full((32, 1), 3.0))
    experts.up_proj_weight_quantizer = _quantizer_with_amax(torch.zeros(8, 1))
    experts.gate_proj_weight_quantizer = _quantizer_with_amax(torch.empty(8, 1, device="meta"))
    attrs = [f"{p}_weight_quantizer" for p in ("gate_up_proj", "up_proj", "gate_proj")]

    with pytest.warns(UserWarning, match="up_proj_weight_quantizer"):
        uncalibrated = set_expert_quantizer_amax(experts, attrs)

    assert uncalibrated == [experts]  # only the all-zero per-block amax was filled in
    assert torch.equal(experts.up_proj_weight_quantizer.amax, torch.full((8, 1), 3.0))
    assert experts.gate_proj_weight_quantizer.amax.is_meta
