"""Synthetic MXFP4 checkpoints for the cast tests, written with the safetensors library."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

GPT_OSS_QCONFIG = {
    "quant_method": "mxfp4",
    "modules_to_not_convert": [
        "model.layers.*.self_attn",
        "model.layers.*.mlp.router",
        "model.embed_tokens",
        "lm_head",
    ],
}


def e8m0(rng: np.random.Generator, shape: tuple[int, ...], top: int = 120, spread: int = 8):
    """Biased exponents in [top - spread, top]."""
    return rng.integers(top - spread, top + 1, size=shape).astype(np.uint8)


def nibbles(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.integers(0, 256, size=shape, dtype=np.uint8)


def bf16(rng: np.random.Generator, *shape: int) -> torch.Tensor:
    return torch.from_numpy(rng.standard_normal(shape).astype(np.float32)).to(torch.bfloat16)


def gpt_oss_tensors(
    rng: np.random.Generator,
    layers: int = 1,
    experts: int = 4,
    hidden: int = 64,
    inter: int = 64,
    vocab: int = 128,
    spread: int = 8,
) -> dict[str, torch.Tensor]:
    """gpt-oss shapes: experts as MXFP4 blocks/scales, everything else bf16."""
    t: dict[str, torch.Tensor] = {"model.embed_tokens.weight": bf16(rng, vocab, hidden)}
    for i in range(layers):
        p = f"model.layers.{i}"
        for proj, (o, n) in {
            "q_proj": (hidden, hidden),
            "k_proj": (hidden // 2, hidden),
            "v_proj": (hidden // 2, hidden),
            "o_proj": (hidden, hidden),
        }.items():
            t[f"{p}.self_attn.{proj}.weight"] = bf16(rng, o, n)
            t[f"{p}.self_attn.{proj}.bias"] = bf16(rng, o)
        t[f"{p}.self_attn.sinks"] = bf16(rng, 4)
        t[f"{p}.input_layernorm.weight"] = bf16(rng, hidden)
        t[f"{p}.mlp.router.weight"] = bf16(rng, experts, hidden)
        t[f"{p}.mlp.router.bias"] = bf16(rng, experts)
        for name, rows, cols in (("gate_up_proj", 2 * inter, hidden), ("down_proj", hidden, inter)):
            g = cols // 32
            t[f"{p}.mlp.experts.{name}_blocks"] = torch.from_numpy(
                nibbles(rng, (experts, rows, g, 16))
            )
            t[f"{p}.mlp.experts.{name}_scales"] = torch.from_numpy(
                e8m0(rng, (experts, rows, g), spread=spread)
            )
            t[f"{p}.mlp.experts.{name}_bias"] = bf16(rng, experts, rows)
    t["model.norm.weight"] = bf16(rng, hidden)
    t["lm_head.weight"] = bf16(rng, vocab, hidden)
    return t


def gpt_oss_config(layers: int = 1, experts: int = 4, hidden: int = 64, inter: int = 64) -> dict:
    return {
        "architectures": ["GptOssForCausalLM"],
        "model_type": "gpt_oss",
        "hidden_size": hidden,
        "intermediate_size": inter,
        "num_hidden_layers": layers,
        "num_local_experts": experts,
        "quantization_config": dict(GPT_OSS_QCONFIG),
        "torch_dtype": "bfloat16",
    }


def ct_mxfp4_config(ignore: list[str], version: str | None = "0.14.0") -> dict:
    """What compressed-tensors' QuantizationConfig(MXFP4A16, mxfp4-pack-quantized) dumps,
    with the producer ``version`` ModelCompressor records (0.14.0: standard E8M0)."""
    weights = {
        "num_bits": 4, "type": "float", "symmetric": True, "group_size": 32,
        "strategy": "group", "dynamic": False, "scale_dtype": "torch.uint8",
    }  # fmt: skip
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "quantization_config": {
            "config_groups": {"group_0": {"targets": ["Linear"], "weights": weights}},
            "quant_method": "compressed-tensors",
            "format": "mxfp4-pack-quantized",
            "quantization_status": "compressed",
            "ignore": ignore,
        }
        | ({} if version is None else {"version": version}),
    }


def write_checkpoint(
    root: Path, tensors: dict[str, torch.Tensor], config: dict, shards: int = 1
) -> Path:
    """Save tensors (split round-robin into ``shards`` files with an index when > 1)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.json").write_text(json.dumps(config, indent=2))
    (root / "tokenizer.json").write_text('{"version": "1.0", "model": {"type": "BPE"}}')
    (root / "generation_config.json").write_text('{"do_sample": true}')
    if shards == 1:
        save_file(tensors, str(root / "model.safetensors"), metadata={"format": "pt"})
        return root
    names = sorted(tensors)
    weight_map = {}
    for s in range(shards):
        fname = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        part = {n: tensors[n] for n in names[s::shards]}
        save_file(part, str(root / fname), metadata={"format": "pt"})
        weight_map |= dict.fromkeys(part, fname)
    total = sum(t.numel() * t.element_size() for t in tensors.values())
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (root / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    return root
