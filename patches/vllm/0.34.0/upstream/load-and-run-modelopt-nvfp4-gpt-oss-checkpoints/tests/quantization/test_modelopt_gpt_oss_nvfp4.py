# SPDX-License-Identifier: Apache-2.0
# SPDX-FileCopyrightText: Copyright contributors to the vLLM project
"""gpt-oss checkpoints in ModelOpt's NVFP4 export format load and run.

ModelOpt's unified HF export keeps gpt-oss's fused experts in the BMM layout:
``X`` uint8 (E, in/2, out), ``X_weight_scale`` fp8 (E, in/16, out),
``X_weight_scale_2`` fp32 scalar and ``X_bias`` (E, out), with quant_algo
W4A16_NVFP4. The tests write such a checkpoint (tiny, random) and load it through
``DefaultModelLoader`` into ``GptOssForCausalLM`` with ``ModelOptNvFp4FusedMoE``.

Runs on CPU. Only what needs a GPU is replaced (``on_cpu``):

- ``MarlinExperts._supports_current_device`` (a CUDA capability check) says yes,
  so the NVFP4 MoE oracle picks Marlin, the W4A16 NVFP4 MoE backend;
- attention backend selection returns the CPU backend (attention is not run);
- the CUDA kernel ``ops.gptq_marlin_repack`` is replaced by a reshape that keeps
  the bytes;
- the Marlin MoE GEMM is not called: the forward test computes the experts in
  torch from the processed layer the way the kernel reads it, and compares them
  with transformers' ``GptOssExperts`` on the checkpoint's values.
"""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

import vllm._custom_ops as ops
from vllm.config import (
    DeviceConfig,
    LoadConfig,
    ModelConfig,
    VllmConfig,
    set_current_vllm_config,
)
from vllm.distributed import (
    destroy_distributed_environment,
    destroy_model_parallel,
    init_distributed_environment,
    initialize_model_parallel,
)
from vllm.model_executor.layers.activation import SwigluOAIAndMul
from vllm.model_executor.layers.fused_moe.experts.marlin_moe import MarlinExperts
from vllm.model_executor.layers.fused_moe.routed_experts import RoutedExperts
from vllm.model_executor.layers.quantization.utils import marlin_utils_fp4
from vllm.model_executor.layers.quantization.utils.marlin_utils import (
    get_scale_perms,
)
from vllm.model_executor.model_loader.default_loader import DefaultModelLoader
from vllm.model_executor.model_loader.utils import initialize_model
from vllm.utils.torch_utils import set_default_torch_dtype

EXPERTS = "model.layers.0.mlp.experts"
E2M1 = torch.tensor(
    [0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6],
    dtype=torch.float32,
)

# Tiny gpt-oss. hidden 64 is not a multiple of 128, so Marlin pads the
# intermediate size 64 to 128 (between w13's interleaved gate/up rows).
HIDDEN, INTER, NUM_EXPERTS, TOP_K, VOCAB = 64, 64, 4, 2, 128
GPT_OSS_CONFIG = {
    "architectures": ["GptOssForCausalLM"],
    "model_type": "gpt_oss",
    "hidden_size": HIDDEN,
    "intermediate_size": INTER,
    "num_hidden_layers": 1,
    "num_local_experts": NUM_EXPERTS,
    "num_experts_per_tok": TOP_K,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,
    "vocab_size": VOCAB,
    "max_position_embeddings": 256,
    "sliding_window": 128,
    "layer_types": ["full_attention"],
    "rms_norm_eps": 1e-5,
    "swiglu_limit": 7.0,
    "rope_theta": 150000.0,
    "rope_scaling": {
        "rope_type": "yarn",
        "factor": 32.0,
        "beta_fast": 32.0,
        "beta_slow": 1.0,
        "truncate": False,
        "original_max_position_embeddings": 4096,
    },
    "attention_bias": True,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
}
# As ModelOpt's export writes it for a weight-only NVFP4 gpt-oss.
MODELOPT_W4A16_NVFP4 = {
    "quant_method": "modelopt",
    "quant_algo": "W4A16_NVFP4",
    "config_groups": {
        "group_0": {
            "weights": {
                "dynamic": False,
                "num_bits": 4,
                "type": "float",
                "group_size": 16,
            },
            "targets": ["Linear"],
        }
    },
    "ignore": ["lm_head", "model.layers.0.self_attn*"],
}


def _checkpoint_tensors() -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(46641)

    def bf16(*shape):
        return (torch.randn(*shape, generator=gen) * 0.1).to(torch.bfloat16)

    t = {
        "model.embed_tokens.weight": bf16(VOCAB, HIDDEN),
        "model.norm.weight": bf16(HIDDEN),
        "lm_head.weight": bf16(VOCAB, HIDDEN),
    }
    p = "model.layers.0"
    for proj, out in (("q", HIDDEN), ("k", HIDDEN // 2), ("v", HIDDEN // 2)):
        t[f"{p}.self_attn.{proj}_proj.weight"] = bf16(out, HIDDEN)
        t[f"{p}.self_attn.{proj}_proj.bias"] = bf16(out)
    t[f"{p}.self_attn.o_proj.weight"] = bf16(HIDDEN, HIDDEN)
    t[f"{p}.self_attn.o_proj.bias"] = bf16(HIDDEN)
    t[f"{p}.self_attn.sinks"] = bf16(4)
    t[f"{p}.input_layernorm.weight"] = bf16(HIDDEN)
    t[f"{p}.post_attention_layernorm.weight"] = bf16(HIDDEN)
    t[f"{p}.mlp.router.weight"] = bf16(NUM_EXPERTS, HIDDEN)
    t[f"{p}.mlp.router.bias"] = bf16(NUM_EXPERTS)
    for proj, k, n in (
        ("gate_up_proj", HIDDEN, 2 * INTER),
        ("down_proj", INTER, HIDDEN),
    ):
        t[f"{EXPERTS}.{proj}"] = torch.randint(
            0, 256, (NUM_EXPERTS, k // 2, n), generator=gen, dtype=torch.uint8
        )
        scale = 2.0 ** torch.randint(-2, 3, (NUM_EXPERTS, k // 16, n), generator=gen)
        t[f"{EXPERTS}.{proj}_weight_scale"] = scale.to(torch.float8_e4m3fn)
        t[f"{EXPERTS}.{proj}_weight_scale_2"] = torch.tensor(0.25 if n > k else 0.5)
        t[f"{EXPERTS}.{proj}_bias"] = bf16(NUM_EXPERTS, n)
    return t


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("gpt-oss-nvfp4")
    config = dict(GPT_OSS_CONFIG, quantization_config=MODELOPT_W4A16_NVFP4)
    (path / "config.json").write_text(json.dumps(config))
    save_file(_checkpoint_tensors(), str(path / "model.safetensors"))
    return path


def _vllm_config(checkpoint) -> VllmConfig:
    return VllmConfig(
        model_config=ModelConfig(
            model=str(checkpoint), dtype="bfloat16", skip_tokenizer_init=True
        ),
        device_config=DeviceConfig(device="cpu"),
        load_config=LoadConfig(),
    )


@pytest.fixture(scope="module")
def dist(tmp_path_factory, checkpoint):
    """A one-process gloo group."""
    store = tmp_path_factory.mktemp("gloo") / "store"
    with set_current_vllm_config(_vllm_config(checkpoint)):
        init_distributed_environment(
            world_size=1,
            rank=0,
            distributed_init_method=f"file://{store}",
            local_rank=0,
            backend="gloo",
        )
        initialize_model_parallel(1, 1)
    try:
        yield
    finally:
        destroy_model_parallel()
        destroy_distributed_environment()


def _repack_on_cpu(b_q_weight, size_k, size_n, num_bits, is_a_8bit=False):
    """Stands in for the CUDA ``gptq_marlin_repack``: same bytes, its out shape."""
    return b_q_weight.reshape(size_k // 16, size_n * 16 * num_bits // 32).clone()


def _unrepack(weight: torch.Tensor, size_k: int, size_n: int) -> torch.Tensor:
    """Undo ``_repack_on_cpu`` for one expert: (size_n, size_k / 2) bytes."""
    return weight.reshape(size_k // 8, size_n).T.contiguous().view(torch.uint8)


def _unpermute_bias(bias: torch.Tensor) -> torch.Tensor:
    """Undo ``marlin_permute_bias``."""
    perm = torch.tensor(get_scale_perms()[1])
    return bias.reshape(-1, len(perm))[:, torch.argsort(perm)].reshape(bias.shape)


@pytest.fixture
def on_cpu(monkeypatch):
    """Replace only the GPU-bound pieces; return the block scales Marlin gets."""
    import vllm.model_executor.layers.attention.attention as attention
    from vllm.v1.attention.backends.cpu_attn import CPUAttentionBackend

    monkeypatch.setattr(
        MarlinExperts, "_supports_current_device", staticmethod(lambda: True)
    )
    monkeypatch.setattr(
        attention, "get_attn_backend", lambda *args, **kwargs: CPUAttentionBackend
    )
    monkeypatch.setattr(ops, "gptq_marlin_repack", _repack_on_cpu)
    # Not a replacement: record the (padded) block scales, then run vLLM's own.
    scales: list[torch.Tensor] = []
    permute_scales = marlin_utils_fp4.marlin_permute_scales

    def record(s, **kwargs):
        scales.append(s.detach().clone())
        return permute_scales(s=s, **kwargs)

    monkeypatch.setattr(marlin_utils_fp4, "marlin_permute_scales", record)
    return scales


def _decode_nvfp4(packed, scale, scale_2):
    """(..., rows, K/2) bytes, low nibble first, (..., rows, K/16) scales."""
    codes = torch.stack([packed & 0xF, packed >> 4], dim=-1).flatten(-2)
    block = scale.float().repeat_interleave(16, dim=-1)
    return E2M1[codes.long()] * block * scale_2.float()


def _checkpoint_experts(checkpoint) -> dict[str, torch.Tensor]:
    """The checkpoint's dequantized experts in vLLM's (E, out, in) layout."""
    t = load_file(str(checkpoint / "model.safetensors"))
    out = {}
    for proj, param in (("gate_up_proj", "w13"), ("down_proj", "w2")):
        key = f"{EXPERTS}.{proj}"
        out[param] = _decode_nvfp4(
            t[key].transpose(-1, -2),
            t[f"{key}_weight_scale"].transpose(-1, -2),
            t[f"{key}_weight_scale_2"],
        )
        out[f"{param}_bias"] = t[f"{key}_bias"].float()
    return out


def _load(config: VllmConfig) -> tuple[torch.nn.Module, RoutedExperts]:
    """Build the model, fill it with NaN, then load the checkpoint into it."""
    with (
        set_current_vllm_config(config),
        set_default_torch_dtype(config.model_config.dtype),
    ):
        model = initialize_model(vllm_config=config, model_config=config.model_config)
        with torch.no_grad():
            for _, p in _checkpoint_params(model):
                p.fill_(255 if p.dtype == torch.uint8 else float("nan"))
        DefaultModelLoader(config.load_config).load_weights(model, config.model_config)
    (experts,) = [m for m in model.modules() if isinstance(m, RoutedExperts)]
    return model, experts


def _checkpoint_params(model):
    """Every parameter the checkpoint fills (KV-cache scales keep defaults)."""
    for name, p in model.named_parameters():
        if type(p).__name__ != "KVCacheScaleParameter":
            yield name, p


def test_modelopt_nvfp4_gpt_oss_loads(checkpoint, dist, on_cpu):
    model, experts = _load(_vllm_config(checkpoint))
    assert type(experts.quant_method).__name__ == "ModelOptNvFp4FusedMoE"

    for name, p in _checkpoint_params(model):
        if p.dtype != torch.uint8:
            assert not p.float().isnan().any(), f"{name} was not loaded"

    want = _checkpoint_experts(checkpoint)
    s2_13 = experts.w13_weight_scale_2
    assert torch.equal(s2_13[:, 0], s2_13[:, 1])
    w13 = _decode_nvfp4(
        experts.w13_weight, experts.w13_weight_scale, s2_13[:, :1, None]
    )
    w2 = _decode_nvfp4(
        experts.w2_weight,
        experts.w2_weight_scale,
        experts.w2_weight_scale_2[:, None, None],
    )
    assert torch.equal(w13, want["w13"])
    assert torch.equal(w2, want["w2"])
    assert torch.equal(experts.w13_bias.float(), want["w13_bias"])
    assert torch.equal(experts.w2_bias.float(), want["w2_bias"])


def _marlin_layer_per_expert(layer, scales, g13, g2, x, halves=False):
    """Each expert's output from the processed (padded, Marlin-laid-out) layer.

    Weights: the repacked bytes per expert; block scales: the padded ones
    handed to Marlin's scale layout; biases: the quant config's, which the
    kernel reads. SWIGLUOAI pairs GEMM 1's rows as the kernel's activation.
    """
    num_experts = layer.w13_weight.shape[0]
    quant_config = layer.quant_method.moe_quant_config
    assert quant_config.w1_bias is not None and quant_config.w2_bias is not None
    act = SwigluOAIAndMul()
    outs = []
    for e in range(num_experts):
        s13, s2 = scales[e].T, scales[num_experts + e].T  # (n, k/16)
        n13, k13 = s13.shape[0], s13.shape[1] * 16
        n2, k2 = s2.shape[0], s2.shape[1] * 16
        w13 = _decode_nvfp4(_unrepack(layer.w13_weight[e], k13, n13), s13, g13[e])
        w2 = _decode_nvfp4(_unrepack(layer.w2_weight[e], k2, n2), s2, g2[e])
        h = x @ w13.T + _unpermute_bias(quant_config.w1_bias[e].float())
        if halves:  # pair row i with row n + i, as a [gate; up] layout would
            h = torch.stack(h.chunk(2, dim=-1), dim=-1).flatten(-2)
        out = act.forward_native(h) @ w2.T
        outs.append(out + _unpermute_bias(quant_config.w2_bias[e].float()))
    return torch.stack(outs)


def _transformers_per_expert(values, x):
    """Run transformers' GptOssExperts on the checkpoint's values, per expert."""
    from transformers import GptOssConfig
    from transformers.models.gpt_oss.modeling_gpt_oss import GptOssExperts

    config = GptOssConfig(
        **{k: v for k, v in GPT_OSS_CONFIG.items() if k != "architectures"}
    )
    experts = GptOssExperts(config).float()
    with torch.no_grad():
        experts.gate_up_proj.copy_(values["w13"].transpose(-1, -2))
        experts.gate_up_proj_bias.copy_(values["w13_bias"])
        experts.down_proj.copy_(values["w2"].transpose(-1, -2))
        experts.down_proj_bias.copy_(values["w2_bias"])
        outs = []
        for e in range(NUM_EXPERTS):
            index = torch.full((x.shape[0], 1), e, dtype=torch.long)
            outs.append(experts(x, index, torch.ones(x.shape[0], 1)))
    return torch.stack(outs)


def test_modelopt_nvfp4_gpt_oss_marlin_layer_matches_transformers(
    checkpoint, dist, on_cpu
):
    """The layer prepared for Marlin computes what transformers' experts do."""
    config = _vllm_config(checkpoint)
    _, layer = _load(config)
    g13 = layer.w13_weight_scale_2[:, 0].detach().clone()
    g2 = layer.w2_weight_scale_2.detach().clone()
    x = torch.randn(16, HIDDEN, generator=torch.Generator().manual_seed(0))
    with set_current_vllm_config(config):
        layer.quant_method.process_weights_after_loading(layer)
        assert type(layer.quant_method.moe_kernel.fused_experts) is MarlinExperts
        got = _marlin_layer_per_expert(layer, on_cpu, g13, g2, x)
        halves = _marlin_layer_per_expert(layer, on_cpu, g13, g2, x, halves=True)
    want = _transformers_per_expert(_checkpoint_experts(checkpoint), x)

    scale = want.abs().max().item()
    assert (got - want).abs().max().item() <= 1e-5 * scale
    # The comparison sees the layout: read as [gate; up] halves it is far off.
    assert (halves - want).abs().max().item() > 0.1 * scale
