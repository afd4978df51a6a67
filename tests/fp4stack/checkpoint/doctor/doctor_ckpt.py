"""Synthetic checkpoints in every format the doctor checks, written with numpy alone (the
safetensors layout is the reference one: 8-byte length, JSON header, packed data).

A checkpoint is ``Ckpt(config, tensors, extra_files)``; ``tensors`` maps a name to
``(dtype, array)`` with the array already in the dtype's bytes (F8_E4M3 as uint8 codes,
BF16 as uint16 bits). Defects are small functions that edit a Ckpt before it is written.
"""

from __future__ import annotations

import copy
import json
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fp4stack.checkpoint.fp4 import E4M3_VALUES, e4m3_encode

Tensor = tuple[str, np.ndarray]
HIDDEN, INTER, VOCAB = 64, 128, 96
LINEARS = {
    "self_attn.q_proj": (HIDDEN, HIDDEN),
    "self_attn.o_proj": (HIDDEN, HIDDEN),
    "mlp.gate_proj": (INTER, HIDDEN),
    "mlp.down_proj": (HIDDEN, INTER),
}


@dataclass
class Ckpt:
    config: dict
    tensors: dict[str, Tensor]
    files: dict[str, dict] = field(default_factory=dict)  # extra JSON files

    def copy(self) -> Ckpt:
        return copy.deepcopy(self)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def bf16(values: np.ndarray) -> Tensor:
    bits = np.asarray(values, dtype=np.float32).view(np.uint32) >> 16
    return "BF16", bits.astype(np.uint16)


def f32(values: object) -> Tensor:
    return "F32", np.asarray(values, dtype=np.float32)


def e4m3(values: np.ndarray) -> Tensor:
    return "F8_E4M3", e4m3_encode(np.asarray(values, dtype=np.float64))


def u8(values: np.ndarray) -> Tensor:
    return "U8", np.asarray(values, dtype=np.uint8)


def _dense(r: np.random.Generator, layers: int) -> dict[str, Tensor]:
    t = {"model.embed_tokens.weight": bf16(r.standard_normal((VOCAB, HIDDEN)))}
    for i in range(layers):
        t[f"model.layers.{i}.input_layernorm.weight"] = bf16(np.ones(HIDDEN))
    t["model.norm.weight"] = bf16(np.ones(HIDDEN))
    t["lm_head.weight"] = bf16(r.standard_normal((VOCAB, HIDDEN)))
    return t


def _llama(qc: dict, layers: int = 2) -> dict:
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": HIDDEN,
        "intermediate_size": INTER,
        "num_hidden_layers": layers,
        "torch_dtype": "bfloat16",
        "quantization_config": qc,
    }


def _modules(layers: int) -> list[tuple[str, int, int]]:
    return [(f"model.layers.{i}.{m}", o, n) for i in range(layers) for m, (o, n) in LINEARS.items()]


def ct_nvfp4(layers: int = 2, version: str = "0.13.0") -> Ckpt:
    """compressed-tensors NVFP4 (W4A4), as llm-compressor saves it."""
    r = rng(1)
    t = _dense(r, layers)
    for mod, out, cols in _modules(layers):
        t[f"{mod}.weight_packed"] = u8(r.integers(0, 256, (out, cols // 2)))
        t[f"{mod}.weight_scale"] = e4m3(r.uniform(1, 448, (out, cols // 16)))
        t[f"{mod}.weight_global_scale"] = f32([1234.5])
        t[f"{mod}.input_global_scale"] = f32([321.0])
    args = {
        "num_bits": 4,
        "type": "float",
        "symmetric": True,
        "group_size": 16,
        "strategy": "tensor_group",
        "dynamic": False,
        "scale_dtype": "torch.float8_e4m3fn",
    }
    qc = {
        "quant_method": "compressed-tensors",
        "format": "nvfp4-pack-quantized",
        "quantization_status": "compressed",
        "version": version,
        "ignore": ["lm_head"],
        "config_groups": {
            "group_0": {
                "targets": ["Linear"],
                "weights": args,
                "input_activations": dict(args, dynamic="local"),
            }
        },
    }
    return Ckpt(_llama(qc, layers), t)


def ct_mxfp4(layers: int = 2, version: str | None = "0.14.0") -> Ckpt:
    r = rng(2)
    t = _dense(r, layers)
    for mod, out, cols in _modules(layers):
        t[f"{mod}.weight_packed"] = u8(r.integers(0, 256, (out, cols // 2)))
        t[f"{mod}.weight_scale"] = u8(r.integers(112, 124, (out, cols // 32)))
    args = {
        "num_bits": 4,
        "type": "float",
        "symmetric": True,
        "group_size": 32,
        "strategy": "group",
        "dynamic": False,
        "scale_dtype": "torch.uint8",
    }
    qc = {
        "quant_method": "compressed-tensors",
        "format": "mxfp4-pack-quantized",
        "quantization_status": "compressed",
        "ignore": ["lm_head"],
        "config_groups": {"group_0": {"targets": ["Linear"], "weights": args}},
    }
    if version is not None:
        qc["version"] = version
    return Ckpt(_llama(qc, layers), t)


def _fp8_block(r: np.random.Generator, layers: int, scale_name: str) -> dict[str, Tensor]:
    t = _dense(r, layers)
    for mod, out, cols in _modules(layers):
        t[f"{mod}.weight"] = e4m3(r.uniform(0, 448, (out, cols)))
        t[f"{mod}.{scale_name}"] = f32(r.uniform(1e-4, 1e-2, (-(-out // 32), -(-cols // 32))))
    return t


def ct_fp8_block(layers: int = 2) -> Ckpt:
    """compressed-tensors FP8_BLOCK (blocks of 32 here, to keep the files small)."""
    weights = {
        "num_bits": 8,
        "type": "float",
        "symmetric": True,
        "strategy": "block",
        "block_structure": [32, 32],
        "dynamic": False,
    }
    acts = {"num_bits": 8, "type": "float", "strategy": "group", "group_size": 32, "dynamic": True}
    qc = {
        "quant_method": "compressed-tensors",
        "format": "float-quantized",
        "quantization_status": "compressed",
        "version": "0.13.0",
        "ignore": ["lm_head"],
        "config_groups": {
            "group_0": {"targets": ["Linear"], "weights": weights, "input_activations": acts}
        },
    }
    return Ckpt(_llama(qc, layers), _fp8_block(rng(3), layers, "weight_scale"))


def fp8_block(layers: int = 2) -> Ckpt:
    """quant_method fp8 with weight_block_size (DeepSeek/Qwen style): weight_scale_inv."""
    qc = {"quant_method": "fp8", "activation_scheme": "dynamic", "weight_block_size": [32, 32]}
    return Ckpt(_llama(qc, layers), _fp8_block(rng(4), layers, "weight_scale_inv"))


def modelopt_nvfp4(gpt_oss: bool = False, experts: int = 4) -> Ckpt:
    """ModelOpt's unified HF export: linear (out, in/2) and, for gpt-oss, BMM experts."""
    r = rng(5)
    t = _dense(r, 1)
    for mod, out, cols in _modules(1):
        if gpt_oss and ".mlp." in mod:
            continue
        t[f"{mod}.weight"] = u8(r.integers(0, 256, (out, cols // 2)))
        t[f"{mod}.weight_scale"] = e4m3(r.uniform(1, 448, (out, cols // 16)))
        t[f"{mod}.weight_scale_2"] = f32(np.float32(3e-4))
    if gpt_oss:
        for proj, (cols, out) in {
            "gate_up_proj": (HIDDEN, 2 * INTER),
            "down_proj": (INTER, HIDDEN),
        }.items():
            p = f"model.layers.0.mlp.experts.{proj}"
            t[p] = u8(r.integers(0, 256, (experts, cols // 2, out)))
            t[f"{p}_weight_scale"] = e4m3(r.uniform(1, 448, (experts, cols // 16, out)))
            t[f"{p}_weight_scale_2"] = f32(np.float32(2e-4))
            t[f"{p}_bias"] = bf16(r.standard_normal((experts, out)))
    exclude = ["lm_head", "model.embed_tokens"]
    qc = {
        "quant_method": "modelopt",
        "quant_algo": "W4A16_NVFP4",
        "ignore": exclude,
        "producer": {"name": "modelopt", "version": "0.47.0"},
        "config_groups": {
            "group_0": {
                "targets": ["Linear"],
                "weights": {"num_bits": 4, "type": "float", "group_size": 16, "dynamic": False},
            }
        },
    }
    config = _llama(qc, 1)
    if gpt_oss:
        config |= {"architectures": ["GptOssForCausalLM"], "model_type": "gpt_oss"}
    hf = {
        "producer": {"name": "modelopt", "version": "0.47.0"},
        "quantization": {
            "quant_algo": "W4A16_NVFP4",
            "kv_cache_quant_algo": None,
            "group_size": 16,
            "exclude_modules": exclude,
        },
    }
    return Ckpt(config, t, {"hf_quant_config.json": hf})


def gpt_oss_mxfp4(experts: int = 4) -> Ckpt:
    r = rng(6)
    t = _dense(r, 1)
    for proj, (rows, cols) in {
        "gate_up_proj": (2 * INTER, HIDDEN),
        "down_proj": (HIDDEN, INTER),
    }.items():
        p = f"model.layers.0.mlp.experts.{proj}"
        t[f"{p}_blocks"] = u8(r.integers(0, 256, (experts, rows, cols // 32, 16)))
        t[f"{p}_scales"] = u8(r.integers(112, 124, (experts, rows, cols // 32)))
        t[f"{p}_bias"] = bf16(r.standard_normal((experts, rows)))
    config = {
        "architectures": ["GptOssForCausalLM"],
        "model_type": "gpt_oss",
        "quantization_config": {"quant_method": "mxfp4", "modules_to_not_convert": ["lm_head"]},
    }
    return Ckpt(config, t)


def save_safetensors(path: Path, tensors: dict[str, Tensor], metadata: dict | None = None) -> None:
    header: dict = {"__metadata__": metadata or {"format": "pt"}}
    blobs, offset = [], 0
    for name, (dtype, array) in tensors.items():
        data = np.ascontiguousarray(array).tobytes()
        header[name] = {
            "dtype": dtype,
            "shape": list(np.shape(array)),
            "data_offsets": [offset, offset + len(data)],
        }
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def write(root: Path, ckpt: Ckpt, shards: int = 1) -> Path:
    """Write config.json, the extra files and the shards (with an index when > 1)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.json").write_text(json.dumps(ckpt.config, indent=2))
    (root / "tokenizer.json").write_text('{"model": {"type": "BPE"}}')
    for name, data in ckpt.files.items():
        (root / name).write_text(json.dumps(data, indent=2))
    if shards == 1:
        save_safetensors(root / "model.safetensors", ckpt.tensors)
        return root
    names, weight_map = sorted(ckpt.tensors), {}
    for s in range(shards):
        fname = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        part = {n: ckpt.tensors[n] for n in names[s::shards]}
        save_safetensors(root / fname, part)
        weight_map |= dict.fromkeys(part, fname)
    total = sum(a.nbytes for _, a in ckpt.tensors.values())
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (root / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    return root


def rename_all(old: str, new: str) -> Callable[[Ckpt], None]:
    """A defect: every tensor named ``*.<old>`` renamed ``*.<new>``."""

    def edit(c: Ckpt) -> None:
        for name in [n for n in c.tensors if n.endswith(f".{old}")]:
            c.tensors[name.removesuffix(old) + new] = c.tensors.pop(name)

    return edit


def widen_scales(exact: bool = True) -> Callable[[Ckpt], None]:
    """What nvfp4-fix's fix-model does: fp8 block scales cast to bf16 (plus, for the
    inexact case, one value nudged off the E4M3 grid)."""

    def edit(c: Ckpt) -> None:
        for name in [n for n in c.tensors if n.endswith(".weight_scale")]:
            values = E4M3_VALUES[c.tensors[name][1]].astype(np.float32)
            if not exact:
                values.reshape(-1)[3] = 1.0078125  # a bf16 value between E4M3 1.0 and 1.125
            c.tensors[name] = bf16(values)

    return edit
