"""transformers 5.x loads llm-compressor 0.14.0.1 checkpoints with the producer's numbers.

The checkpoints in data/llmcompressor-0.14.0.1/ were written by the real producer in its own
env (compressed-tensors 0.19.0, transformers 5.17.0; make_llmcompressor_checkpoints.py), each
beside the logits of the producer's own fake-quantized model. Here they load through
transformers' real loader, with our compressed-tensors 0.20.1 wheel (`wheels_from`), in
bfloat16 and float32, with `dequantize` off and on. After every load, every checkpoint
tensor was consumed or deliberately ignored: none is reported unexpected, none missing.

Where the consumer can reproduce the producer's forward, the logits must match (relative
error at most 1e-3). Where it cannot (the fused MoE experts of a scheme that quantizes
activations: transformers has no activation quantization for them; FP8_BLOCK in float32,
whose codes were chosen in bfloat16), the dequantized weights must equal the checkpoint's,
computed here from the raw tensors, and the loader must say what it does not reproduce.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM
from transformers.utils import logging as hf_logging
from transformers.utils.quantization_config import CompressedTensorsConfig

DATA = Path(__file__).parent / "data" / "llmcompressor-0.14.0.1"
DTYPES = pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
DEQUANTIZE = pytest.mark.parametrize("dequantize", [False, True], ids=lambda v: f"dequantize-{v}")
E2M1 = torch.tensor([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0])
TOLERANCE = 1e-3


def load(name: str, dtype: str, dequantize: bool) -> tuple[torch.nn.Module, dict]:
    model, info = AutoModelForCausalLM.from_pretrained(
        DATA / name,
        dtype=getattr(torch, dtype),
        output_loading_info=True,
        quantization_config=CompressedTensorsConfig(dequantize=dequantize),
    )
    return model, info


def assert_every_tensor_consumed(info: dict) -> None:
    assert not info["unexpected_keys"], f"unused: {sorted(info['unexpected_keys'])[:4]}"
    assert not info["missing_keys"], f"not loaded: {sorted(info['missing_keys'])[:4]}"


def relative_error(name: str, model: torch.nn.Module, dtype: str) -> float:
    reference = load_file(DATA / name / "reference.safetensors")
    with torch.no_grad():
        logits = model(reference["input_ids"]).logits.float()
    expected = reference[f"logits_{dtype}"]
    return float((logits - expected).norm() / expected.norm())


def checkpoint(name: str) -> dict[str, torch.Tensor]:
    with safe_open(DATA / name / "model.safetensors", "pt") as f:
        return {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118 (safe_open is no dict)


def nvfp4_weight(tensors: dict[str, torch.Tensor], prefix: str) -> torch.Tensor:
    """An NVFP4 weight from its raw tensors: two E2M1 codes per byte (low nibble first), one
    FP8 scale per 16 values, divided by the global scale; exact in float32."""
    packed = tensors[f"{prefix}.weight_packed"]
    codes = torch.stack([packed & 0x0F, packed >> 4], dim=-1).reshape(packed.shape[0], -1)
    values = E2M1[(codes & 0x07).long()] * torch.where(codes >= 8, -1.0, 1.0)
    scale = tensors[f"{prefix}.weight_scale"].float() / tensors[f"{prefix}.weight_global_scale"]
    return values * scale.repeat_interleave(16, dim=1)


def fp8_block_weight(tensors: dict[str, torch.Tensor], prefix: str) -> torch.Tensor:
    """A 128x128-block FP8 weight from its raw tensors: code times its block's scale, rounded
    once to the scale's dtype (bfloat16), as the producer's fake-quant computes it."""
    weight = tensors[f"{prefix}.weight"].float()
    scale = tensors[f"{prefix}.weight_scale"]
    blocks = scale.float().repeat_interleave(128, 0).repeat_interleave(128, 1)
    return (weight * blocks[: weight.shape[0], : weight.shape[1]]).to(scale.dtype).float()


def assert_experts_equal_the_checkpoint(name: str, model: torch.nn.Module, dtype: str) -> None:
    """Every fused expert parameter holds, expert by expert, the checkpoint's dequantized
    gate and up projections (stacked) and down projection, in the load dtype."""
    tensors = checkpoint(name)
    dequantize = fp8_block_weight if "FP8_BLOCK" in name else nvfp4_weight
    layers = model.model.layers
    for index, layer in enumerate(layers):
        experts = layer.mlp.experts
        assert experts.gate_up_proj.dtype == getattr(torch, dtype)
        assert experts.down_proj.dtype == getattr(torch, dtype)
        for e in range(experts.gate_up_proj.shape[0]):
            prefix = f"model.layers.{index}.mlp.experts.{e}"
            gate = dequantize(tensors, f"{prefix}.gate_proj")
            up = dequantize(tensors, f"{prefix}.up_proj")
            down = dequantize(tensors, f"{prefix}.down_proj")
            assert_same_weight(experts.gate_up_proj[e], torch.cat([gate, up]))
            assert_same_weight(experts.down_proj[e], down)


def assert_same_weight(loaded: torch.Tensor, expected: torch.Tensor) -> None:
    """Equal in float32; in bfloat16 (where the decompression rounds at each step), within one
    rounding of the exact value."""
    if loaded.dtype == torch.float32:
        assert torch.equal(loaded, expected)
    else:
        torch.testing.assert_close(loaded.float(), expected, rtol=2**-8, atol=0)


@pytest.fixture
def transformers_warnings(caplog: pytest.LogCaptureFixture):
    """transformers' log records (its logger does not propagate by default)."""
    hf_logging.enable_propagation()
    caplog.set_level(logging.WARNING, logger="transformers")
    yield caplog
    hf_logging.disable_propagation()


@DTYPES
@DEQUANTIZE
@pytest.mark.parametrize("scheme", ["NVFP4A16", "MXFP4A16"])
def test_moe_weight_only_fp4_experts_load_with_the_producers_logits(scheme, dtype, dequantize):
    """NVFP4 experts dequantize with their global scale (pristine 5.25.0 drops it: relative
    error 1.4), and every expert lands in the load dtype (pristine: bfloat16 in a float32
    model)."""
    name = f"qwen3_moe-{scheme}"
    model, info = load(name, dtype, dequantize)
    assert_every_tensor_consumed(info)
    for layer in model.model.layers:
        assert layer.mlp.experts.gate_up_proj.dtype == getattr(torch, dtype)
        assert layer.mlp.experts.down_proj.dtype == getattr(torch, dtype)
    assert relative_error(name, model, dtype) <= TOLERANCE


@DTYPES
@DEQUANTIZE
def test_moe_fp8_block_experts_load_with_the_checkpoints_weights(dtype, dequantize):
    """Each expert's 128x128-block scale is expanded over its block (pristine 5.25.0 fails to
    load: `The size of tensor a (256) must match the size of tensor b (2)`)."""
    name = "qwen3_moe-FP8_BLOCK"
    model, info = load(name, dtype, dequantize)
    assert_every_tensor_consumed(info)
    assert_experts_equal_the_checkpoint(name, model, dtype)


@DTYPES
def test_dense_weight_only_dequantize_is_exact_in_the_load_dtype(dtype):
    """`dequantize=True` decompresses into the load dtype (pristine 5.25.0 computes NVFP4 in
    bfloat16, then casts: relative error 2.6e-3 in float32)."""
    model, info = load("llama-NVFP4A16", dtype, dequantize=True)
    assert_every_tensor_consumed(info)
    assert relative_error("llama-NVFP4A16", model, dtype) <= TOLERANCE


@pytest.mark.parametrize("scheme", ["NVFP4", "FP8_BLOCK"])
def test_dense_dequantize_keeps_the_producers_activation_quantization(scheme):
    """With `dequantize=True`, activations are still quantized as the producer quantized
    them, with the checkpoint's static input scales (pristine 5.25.0: NVFP4's
    `input_global_scale` unused, relative error 0.13; FP8_BLOCK's dynamic activations not
    quantized, 0.033)."""
    name = f"llama-{scheme}"
    model, info = load(name, "bfloat16", dequantize=True)
    assert_every_tensor_consumed(info)
    assert relative_error(name, model, "bfloat16") <= TOLERANCE


@DTYPES
@DEQUANTIZE
@pytest.mark.parametrize("scheme", ["NVFP4", "FP8_BLOCK"])
def test_moe_experts_say_their_activations_run_unquantized(
    scheme, dtype, dequantize, transformers_warnings
):
    """Fused experts have no activation quantization in transformers: the loader says so,
    and the experts' input scales are ignored on purpose, not reported unexpected (pristine
    5.25.0: silent, 24 `input_global_scale` unexpected). Their weights are the checkpoint's."""
    name = f"qwen3_moe-{scheme}"
    model, info = load(name, dtype, dequantize)
    assert_every_tensor_consumed(info)
    said = [r.getMessage() for r in transformers_warnings.records]
    assert any("experts" in m and "unquantized" in m for m in said), said
    assert_experts_equal_the_checkpoint(name, model, dtype)


@pytest.mark.parametrize("scheme", ["NVFP4", "NVFP4A16", "MXFP4A16", "FP8_BLOCK"])
@DEQUANTIZE
def test_dense_checkpoints_load_with_the_producers_logits(scheme, dequantize):
    """The dense Llama in bfloat16, every scheme: what 5.25.0 already gets right without
    `dequantize`, kept right by the patches."""
    name = f"llama-{scheme}"
    model, info = load(name, "bfloat16", dequantize)
    assert_every_tensor_consumed(info)
    assert relative_error(name, model, "bfloat16") <= TOLERANCE


def test_dense_fp8_block_float32_weights_are_the_checkpoints():
    """FP8_BLOCK in float32 has no exact fake-quant reference (its codes were chosen in
    bfloat16): the dequantized weights must be the checkpoint's."""
    name = "llama-FP8_BLOCK"
    model, info = load(name, "float32", dequantize=True)
    assert_every_tensor_consumed(info)
    tensors = checkpoint(name)
    prefix = "model.layers.0.mlp.down_proj"
    weight = model.get_submodule(prefix).weight
    assert weight.dtype == torch.float32
    assert torch.equal(weight, fp8_block_weight(tensors, prefix))
