"""A compressed-tensors or Fp8 block-FP8 ``MergedColumnParallelLinear`` on vLLM's Marlin path,
on CPU, for the tests of the two FP8_BLOCK patches.

Real vLLM code runs: the config and its scheme selection, the layer's ``create_weights``,
``weight_loader`` and ``process_weights_after_loading`` / ``prepare_fp8_layer_for_marlin``,
in a real ``VllmConfig`` with a one-process gloo group. :func:`use_marlin_on_cpu` replaces
only what needs a GPU.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

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
from vllm.model_executor.layers.quantization.compressed_tensors.compressed_tensors import (
    CompressedTensorsConfig,
)
from vllm.model_executor.layers.quantization.fp8 import Fp8Config
from vllm.model_executor.layers.quantization.utils import marlin_utils_fp8
from vllm.platforms import current_platform

BLOCK = 128
HIDDEN = 256
SHARDS = [256, 384]  # gate_proj, up_proj
PREFIX = "model.layers.0.mlp.gate_up_proj"


def ct_fp8_block_config(input_activations: dict[str, object] | None) -> dict[str, object]:
    """compressed-tensors' FP8_BLOCK layout (llmcompressor, model_free_ptq): 128x128 block
    FP8 weights, with the given activation scheme or none (weight-only)."""
    group: dict[str, object] = {
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
    if input_activations is not None:
        group["input_activations"] = input_activations
    return {
        "quant_method": "compressed-tensors",
        "format": "float-quantized",
        "ignore": [],
        "config_groups": {"group_0": group},
    }


def native_fp8_block_config() -> Fp8Config:
    """The same checkpoint as Fp8Config reads it, under the native ``weight_scale_inv``."""
    return Fp8Config(
        is_checkpoint_fp8_serialized=True,
        activation_scheme="dynamic",
        weight_block_size=[BLOCK, BLOCK],
    )


@contextmanager
def cpu_vllm_config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmConfig]:
    """A real VllmConfig (bf16 model, CPU device) and a one-process gloo group."""
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
        model_config=ModelConfig(model=str(model_dir), dtype="bfloat16", skip_tokenizer_init=True),
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
            # Not cleanup_dist_env_and_memory(): it needs an accelerator.
            destroy_model_parallel()
            destroy_distributed_environment()


def _fake_marlin_repack(
    b_q_weight: torch.Tensor,
    perm: torch.Tensor | None = None,
    size_k: int = 0,
    size_n: int = 0,
    num_bits: int = 8,
    is_a_8bit: bool = False,
) -> torch.Tensor:
    """``ops.gptq_marlin_repack`` is a CUDA kernel: keep the data, take its output shape.

    vLLM 0.28.0 passes a ``perm``; 0.33.0 has none and an ``is_a_8bit`` flag instead.
    """
    pack_factor = 32 // num_bits
    return b_q_weight.reshape(size_k // 16, size_n * 16 // pack_factor).clone()


def use_marlin_on_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """Replace only the GPU-bound pieces of the FP8 Marlin weight preparation."""
    # The kernel lists are keyed by platform and list Marlin for CUDA only (sm >= 89 with
    # Marlin forced, or Ampere's W8A16): make it the one FP8 block and W8A16 kernel here,
    # and let it report itself supported.
    for kernels in (
        linear_kernels._POSSIBLE_FP8_BLOCK_KERNELS,
        linear_kernels._POSSIBLE_WFP8A16_KERNELS,
    ):
        monkeypatch.setitem(kernels, current_platform._enum, [MarlinFP8ScaledMMLinearKernel])
    monkeypatch.setattr(
        MarlinFP8ScaledMMLinearKernel,
        "is_supported",
        classmethod(lambda cls, cc=None: (True, None)),
    )
    # The CUDA repack kernel.
    monkeypatch.setattr(ops, "gptq_marlin_repack", _fake_marlin_repack)
    # The per-SM workspace (a CUDA allocation): vLLM 0.28.0 makes one per layer when it
    # prepares it; later releases make it in the GEMM and no longer have this helper.
    if hasattr(marlin_utils_fp8, "marlin_make_workspace_new"):
        monkeypatch.setattr(
            marlin_utils_fp8,
            "marlin_make_workspace_new",
            lambda device, max_blocks_per_sm=1, existing=None: torch.zeros(
                1, dtype=torch.int, device=device
            ),
        )


def fp8_block_layer(
    quant_config: CompressedTensorsConfig | Fp8Config,
) -> MergedColumnParallelLinear:
    """The layer as the model builds it: create_weights runs in its constructor."""
    return MergedColumnParallelLinear(
        HIDDEN,
        SHARDS,
        bias=False,
        params_dtype=torch.bfloat16,
        quant_config=quant_config,
        prefix=PREFIX,
    )


def checkpoint(seed: int) -> list[tuple[int, torch.Tensor, torch.Tensor]]:
    """Per shard: fp8 weight [n, K] and distinct fp32 block scales [n/128, K/128]."""
    gen = torch.Generator().manual_seed(seed)
    shards = []
    for shard_id, n in enumerate(SHARDS):
        weight = (torch.randn(n, HIDDEN, generator=gen) * 64).to(torch.float8_e4m3fn)
        scale = torch.rand(n // BLOCK, HIDDEN // BLOCK, generator=gen) + 0.5
        shards.append((shard_id, weight, scale))
    return shards


def load_checkpoint(layer: MergedColumnParallelLinear, scale_name: str, seed: int) -> None:
    """Load a seeded checkpoint through weight_loader and process it for the kernel."""
    params = dict(layer.named_parameters())
    assert scale_name in params, f"the layer registers {sorted(params)}"
    for shard_id, weight, scale in checkpoint(seed):
        layer.weight_loader(params["weight"], weight, shard_id)
        layer.weight_loader(params[scale_name], scale, shard_id)
    layer.quant_method.process_weights_after_loading(layer)
