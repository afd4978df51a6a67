"""A weight-only compressed-tensors FP8_BLOCK checkpoint must load.

A config group with 128x128 block FP8 weights and no ``input_activations`` (FP8 weights,
16-bit activations: llmcompressor's FP8_BLOCK recipe without its activation scheme) is
routed by ``CompressedTensorsConfig._get_scheme_from_parts`` to
``CompressedTensorsW8A16Fp8`` with ``is_static_input_scheme = input_quant and not
input_quant.dynamic``. Without ``input_quant`` that expression is ``None``, and the
scheme's ``process_weights_after_loading`` fails on its block branch:
``assert self.is_static_input_scheme is False`` (vLLM 0.28.0 and 0.33.0 alike).

Real vLLM code runs on CPU: ``CompressedTensorsConfig.from_config`` and its scheme
selection, a real ``MergedColumnParallelLinear`` in a one-process gloo group,
``create_weights``, the ``weight_loader``, ``process_weights_after_loading`` and
``prepare_fp8_layer_for_marlin``. Only what needs a GPU is replaced (see
``use_marlin_on_cpu``): the per-platform kernel lists (Marlin, the W8A16 FP8 kernel of
Ampere/Hopper, is listed for CUDA only), Marlin's own support check, its CUDA repack and,
on 0.28.0, its per-SM workspace. The Marlin GEMM is CUDA-only and not run.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from vllm.config import VllmConfig
from vllm.model_executor.kernels.linear.scaled_mm.marlin import (
    MarlinFP8ScaledMMLinearKernel,
)
from vllm.model_executor.layers.quantization.compressed_tensors.compressed_tensors import (
    CompressedTensorsConfig,
)
from vllm.model_executor.layers.quantization.compressed_tensors.schemes import (
    CompressedTensorsW8A16Fp8,
)

from .fp8_block_marlin_cpu import (
    cpu_vllm_config,
    ct_fp8_block_config,
    fp8_block_layer,
    load_checkpoint,
    native_fp8_block_config,
    use_marlin_on_cpu,
)

SEED = 34863
# FP8 block weights, no input_activations: the activations stay in the model's dtype.
CT_FP8_BLOCK_WEIGHT_ONLY = ct_fp8_block_config(input_activations=None)


@pytest.fixture(scope="module")
def vllm_config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmConfig]:
    with cpu_vllm_config(tmp_path_factory) as config:
        yield config


@pytest.fixture
def marlin_on_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    use_marlin_on_cpu(monkeypatch)


def test_weight_only_fp8_block_scheme_is_not_static(vllm_config, marlin_on_cpu):
    """No input_activations means no static input scale: the flag is False, not None."""
    layer = fp8_block_layer(CompressedTensorsConfig.from_config(CT_FP8_BLOCK_WEIGHT_ONLY))

    assert type(layer.scheme) is CompressedTensorsW8A16Fp8
    assert layer.scheme.is_static_input_scheme is False
    assert sorted(n for n, _ in layer.named_parameters()) == ["weight", "weight_scale"]


def test_weight_only_fp8_block_loads_on_marlin(vllm_config, marlin_on_cpu):
    """The layer loads and is prepared for Marlin exactly like the same checkpoint under
    Fp8Config's native block-scale name (the GEMM itself is CUDA-only and not run)."""
    reference = fp8_block_layer(native_fp8_block_config())
    load_checkpoint(reference, "weight_scale_inv", SEED)

    layer = fp8_block_layer(CompressedTensorsConfig.from_config(CT_FP8_BLOCK_WEIGHT_ONLY))
    load_checkpoint(layer, "weight_scale", SEED)

    assert type(layer.scheme) is CompressedTensorsW8A16Fp8
    assert type(layer.scheme.linear_kernel) is MarlinFP8ScaledMMLinearKernel
    # The block scale is found under Fp8Config's name, and there is one: 0.33.0 renames it,
    # 0.34.0 registers the same parameter under both names.
    params = dict(layer.named_parameters(remove_duplicate=False))
    assert "weight_scale_inv" in params
    assert len({id(p) for p in params.values()}) == 2
    # Repacked weights and Marlin-permuted block scales equal the native layer's.
    assert torch.equal(layer.weight, reference.weight)
    assert torch.equal(layer.weight_scale_inv, reference.weight_scale_inv)
