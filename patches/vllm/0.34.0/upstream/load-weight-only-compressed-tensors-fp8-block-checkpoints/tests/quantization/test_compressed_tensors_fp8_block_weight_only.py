# SPDX-License-Identifier: Apache-2.0
# SPDX-FileCopyrightText: Copyright contributors to the vLLM project
"""A weight-only compressed-tensors FP8_BLOCK checkpoint loads.

A config group with 128x128 block FP8 weights and no ``input_activations`` (FP8
weights, 16-bit activations) goes to ``CompressedTensorsW8A16Fp8``. Its
``is_static_input_scheme`` must be ``False``, not ``None``: the block branch of
``process_weights_after_loading`` asserts ``is False``.

Runs on CPU: the config parsing, scheme selection, a real
``MergedColumnParallelLinear`` in a one-process gloo group, its ``weight_loader``,
``process_weights_after_loading`` and ``prepare_fp8_layer_for_marlin``. Only what
needs a GPU is replaced (``marlin_on_cpu``): the per-platform kernel lists (Marlin
is listed for CUDA only), Marlin's support check, and its CUDA repack kernel. The
Marlin GEMM is not run.
"""

import json

import pytest
import torch

import vllm._custom_ops as ops
from vllm.config import DeviceConfig, ModelConfig, VllmConfig, set_current_vllm_config
from vllm.distributed import (
    destroy_distributed_environment,
    destroy_model_parallel,
    init_distributed_environment,
    initialize_model_parallel,
)
from vllm.model_executor.kernels import linear as linear_kernels
from vllm.model_executor.kernels.linear.scaled_mm.marlin import (
    MarlinFP8ScaledMMLinearKernel,
)
from vllm.model_executor.layers.linear import MergedColumnParallelLinear
from vllm.model_executor.layers.quantization.compressed_tensors.compressed_tensors import (  # noqa: E501
    CompressedTensorsConfig,
)
from vllm.model_executor.layers.quantization.compressed_tensors.schemes import (
    CompressedTensorsW8A16Fp8,
)
from vllm.model_executor.layers.quantization.fp8 import Fp8Config
from vllm.platforms import current_platform

BLOCK = 128
HIDDEN = 256
SHARDS = [256, 384]  # gate_proj, up_proj
PREFIX = "model.layers.0.mlp.gate_up_proj"

# FP8 block weights and no input_activations: activations stay in the model dtype.
WEIGHT_ONLY_FP8_BLOCK_CONFIG = {
    "quant_method": "compressed-tensors",
    "format": "float-quantized",
    "ignore": [],
    "config_groups": {
        "group_0": {
            "targets": ["Linear"],
            "weights": {
                "num_bits": 8,
                "type": "float",
                "strategy": "block",
                "block_structure": [BLOCK, BLOCK],
                "symmetric": True,
                "dynamic": False,
            },
        }
    },
}


def _repack_on_cpu(
    b_q_weight: torch.Tensor,
    size_k: int,
    size_n: int,
    num_bits: int,
    is_a_8bit: bool = False,
) -> torch.Tensor:
    """Stands in for the CUDA ``gptq_marlin_repack``: same bytes, its output shape."""
    pack_factor = 32 // num_bits
    return b_q_weight.reshape(size_k // 16, size_n * 16 // pack_factor).clone()


@pytest.fixture(scope="module")
def vllm_config(tmp_path_factory):
    """A bf16 model config on the CPU device and a one-process gloo group."""
    model_dir = tmp_path_factory.mktemp("tiny-llama")
    (model_dir / "config.json").write_text(
        json.dumps(
            {
                "architectures": ["LlamaForCausalLM"],
                "model_type": "llama",
                "hidden_size": HIDDEN,
                "intermediate_size": SHARDS[0],
                "num_attention_heads": 2,
                "num_key_value_heads": 2,
                "num_hidden_layers": 1,
                "vocab_size": 128,
                "max_position_embeddings": 256,
                "torch_dtype": "bfloat16",
            }
        )
    )
    config = VllmConfig(
        model_config=ModelConfig(
            model=str(model_dir), dtype="bfloat16", skip_tokenizer_init=True
        ),
        device_config=DeviceConfig(device="cpu"),
    )
    store = tmp_path_factory.mktemp("gloo") / "store"
    with set_current_vllm_config(config):
        init_distributed_environment(
            world_size=1,
            rank=0,
            distributed_init_method=f"file://{store}",
            local_rank=0,
            backend="gloo",
        )
        initialize_model_parallel(1, 1)
        try:
            yield config
        finally:
            destroy_model_parallel()
            destroy_distributed_environment()


@pytest.fixture
def marlin_on_cpu(monkeypatch):
    """Replace only the GPU-bound parts of the FP8 Marlin weight preparation."""
    # Marlin (the W8A16 FP8 kernel of Ampere/Hopper) is listed for CUDA only.
    for kernels in (
        linear_kernels._POSSIBLE_FP8_BLOCK_KERNELS,
        linear_kernels._POSSIBLE_WFP8A16_KERNELS,
    ):
        monkeypatch.setitem(
            kernels, current_platform._enum, [MarlinFP8ScaledMMLinearKernel]
        )
    monkeypatch.setattr(
        MarlinFP8ScaledMMLinearKernel,
        "is_supported",
        classmethod(lambda cls, compute_capability=None: (True, None)),
    )
    monkeypatch.setattr(ops, "gptq_marlin_repack", _repack_on_cpu)


def _checkpoint():
    """Per shard: an fp8 weight [n, K] and fp32 block scales [n/128, K/128]."""
    gen = torch.Generator().manual_seed(0)
    shards = []
    for shard_id, n in enumerate(SHARDS):
        weight = (torch.randn(n, HIDDEN, generator=gen) * 64).to(torch.float8_e4m3fn)
        scale = torch.rand(n // BLOCK, HIDDEN // BLOCK, generator=gen) + 0.5
        shards.append((shard_id, weight, scale))
    return shards


def _layer(quant_config):
    return MergedColumnParallelLinear(
        HIDDEN,
        SHARDS,
        bias=False,
        params_dtype=torch.bfloat16,
        quant_config=quant_config,
        prefix=PREFIX,
    )


def _load(layer, scale_name):
    params = dict(layer.named_parameters())
    for shard_id, weight, scale in _checkpoint():
        layer.weight_loader(params["weight"], weight, shard_id)
        layer.weight_loader(params[scale_name], scale, shard_id)
    layer.quant_method.process_weights_after_loading(layer)


def test_weight_only_fp8_block_scheme_is_not_static(vllm_config, marlin_on_cpu):
    config = CompressedTensorsConfig.from_config(WEIGHT_ONLY_FP8_BLOCK_CONFIG)
    layer = _layer(config)

    assert type(layer.scheme) is CompressedTensorsW8A16Fp8
    assert layer.scheme.is_static_input_scheme is False
    assert sorted(n for n, _ in layer.named_parameters()) == [
        "weight",
        "weight_scale",
    ]


def test_weight_only_fp8_block_loads_like_fp8_config(vllm_config, marlin_on_cpu):
    """The layer is prepared for Marlin exactly like the same block-FP8 weights
    loaded under ``Fp8Config``."""
    reference = _layer(
        Fp8Config(
            is_checkpoint_fp8_serialized=True,
            activation_scheme="dynamic",
            weight_block_size=[BLOCK, BLOCK],
        )
    )
    _load(reference, "weight_scale_inv")

    config = CompressedTensorsConfig.from_config(WEIGHT_ONLY_FP8_BLOCK_CONFIG)
    layer = _layer(config)
    _load(layer, "weight_scale")

    assert type(layer.scheme) is CompressedTensorsW8A16Fp8
    assert type(layer.scheme.linear_kernel) is MarlinFP8ScaledMMLinearKernel
    assert torch.equal(layer.weight, reference.weight)
    assert torch.equal(layer.weight_scale_inv, reference.weight_scale_inv)
