"""FP8 block-quant Marlin kernel must accept the compressed-tensors ``weight_scale``.

vLLM issue #43564: ``MarlinFP8ScaledMMLinearKernel`` read ``layer.weight_scale_inv``,
the name only Fp8LinearMethod registers, so a compressed-tensors FP8_BLOCK layer
(which registers ``weight_scale``) failed in ``process_weights_after_loading`` with
``AttributeError: 'MergedColumnParallelLinear' object has no attribute
'weight_scale_inv'``.

Real vLLM code runs on CPU: the compressed-tensors config and scheme, a real
``MergedColumnParallelLinear`` in a one-process gloo group, its ``weight_loader``,
``process_weights_after_loading``, ``prepare_fp8_layer_for_marlin`` and the forward
down to ``apply_fp8_marlin_linear``. Only what needs a GPU is replaced (see
``marlin_on_cpu``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

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
from vllm.model_executor.layers.quantization.compressed_tensors.schemes import (
    CompressedTensorsW8A16Fp8,
)
from vllm.model_executor.layers.quantization.fp8 import Fp8Config
from vllm.model_executor.layers.quantization.utils import marlin_utils_fp8
from vllm.model_executor.layers.quantization.utils.fp8_utils import (
    process_fp8_weight_block_strategy,
)
from vllm.model_executor.layers.quantization.utils.marlin_utils_fp8 import (
    apply_fp8_marlin_linear,
    prepare_fp8_layer_for_marlin,
)
from vllm.model_executor.utils import replace_parameter
from vllm.platforms import current_platform
from vllm.platforms.interface import DeviceCapability

BLOCK = 128
HIDDEN = 256
SHARDS = [256, 384]  # gate_proj, up_proj
PREFIX = "model.layers.0.mlp.gate_up_proj"

# The FP8_BLOCK layout llmcompressor / model_free_ptq write.
CT_FP8_BLOCK = {
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
            "input_activations": {
                "num_bits": 8,
                "type": "float",
                "strategy": "group",
                "group_size": BLOCK,
                "symmetric": True,
                "dynamic": True,
            },
        }
    },
}


@dataclass
class GemmRecorder:
    """Stands in for ``ops.marlin_gemm`` (a CUDA kernel): records its inputs."""

    calls: list[dict[str, object]] = field(default_factory=list)

    def __call__(self, **kwargs: object) -> torch.Tensor:
        self.calls.append(kwargs)
        a = kwargs["a"]
        assert isinstance(a, torch.Tensor)
        return torch.zeros(a.shape[0], int(kwargs["size_n"]), dtype=a.dtype)


def _fake_marlin_repack(
    b_q_weight: torch.Tensor, perm: torch.Tensor, size_k: int, size_n: int, num_bits: int
) -> torch.Tensor:
    """``ops.gptq_marlin_repack`` is a CUDA kernel: keep the data, take its output shape."""
    pack_factor = 32 // num_bits
    return b_q_weight.reshape(size_k // 16, size_n * 16 // pack_factor).clone()


@pytest.fixture(scope="module")
def vllm_config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmConfig]:
    """A real VllmConfig (bf16 model, CPU device) and a one-process gloo group."""
    model_dir: Path = tmp_path_factory.mktemp("tiny-llama")
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


@pytest.fixture
def marlin_on_cpu(monkeypatch: pytest.MonkeyPatch) -> GemmRecorder:
    """Replace only the GPU-bound pieces of the FP8 Marlin path."""
    # Capability checks: act as a CUDA GPU with sm >= 89 where Marlin is forced
    # (VLLM_TEST_FORCE_FP8_MARLIN=1 / --linear-backend marlin), so the platform's
    # FP8 block kernel list is Marlin only and Marlin reports itself supported.
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
    # CUDA kernels and the per-SM workspace.
    monkeypatch.setattr(ops, "gptq_marlin_repack", _fake_marlin_repack)
    recorder = GemmRecorder()
    monkeypatch.setattr(ops, "marlin_gemm", recorder)
    monkeypatch.setattr(
        marlin_utils_fp8,
        "marlin_make_workspace_new",
        lambda device, max_blocks_per_sm=1, existing=None: torch.zeros(
            1, dtype=torch.int, device=device
        ),
    )
    return recorder


def _checkpoint() -> list[tuple[int, torch.Tensor, torch.Tensor]]:
    """Per shard: fp8 weight [n, K] and distinct fp32 block scales [n/128, K/128]."""
    gen = torch.Generator().manual_seed(43564)
    shards = []
    for shard_id, n in enumerate(SHARDS):
        weight = (torch.randn(n, HIDDEN, generator=gen) * 64).to(torch.float8_e4m3fn)
        scale = torch.rand(n // BLOCK, HIDDEN // BLOCK, generator=gen) + 0.5
        shards.append((shard_id, weight, scale))
    return shards


def _load_and_run(
    quant_config: CompressedTensorsConfig | Fp8Config, scale_name: str
) -> MergedColumnParallelLinear:
    """Build the layer, load the checkpoint through weight_loader, process, forward."""
    layer = MergedColumnParallelLinear(
        HIDDEN,
        SHARDS,
        bias=False,
        params_dtype=torch.bfloat16,
        quant_config=quant_config,
        prefix=PREFIX,
    )
    params = dict(layer.named_parameters())
    assert scale_name in params, f"{type(quant_config).__name__} registers {sorted(params)}"
    for shard_id, weight, scale in _checkpoint():
        layer.weight_loader(params["weight"], weight, shard_id)
        layer.weight_loader(params[scale_name], scale, shard_id)
    layer.quant_method.process_weights_after_loading(layer)
    x = torch.randn(3, HIDDEN, generator=torch.Generator().manual_seed(0))
    layer(x.to(torch.bfloat16))
    return layer


def _reference(recorder: GemmRecorder) -> tuple[MergedColumnParallelLinear, dict]:
    """The same checkpoint under the native name: Fp8LinearMethod's ``weight_scale_inv``."""
    fp8 = Fp8Config(
        is_checkpoint_fp8_serialized=True,
        activation_scheme="dynamic",
        weight_block_size=[BLOCK, BLOCK],
    )
    layer = _load_and_run(fp8, "weight_scale_inv")
    assert isinstance(layer.quant_method.fp8_linear, MarlinFP8ScaledMMLinearKernel)
    return layer, recorder.calls.pop()


def test_compressed_tensors_fp8_block_marlin_uses_weight_scale(vllm_config, marlin_on_cpu):
    ref_layer, ref_gemm = _reference(marlin_on_cpu)

    layer = _load_and_run(CompressedTensorsConfig.from_config(CT_FP8_BLOCK), "weight_scale")
    (gemm,) = marlin_on_cpu.calls

    kernel = layer.scheme.fp8_linear
    assert type(kernel) is MarlinFP8ScaledMMLinearKernel
    # Repacked weights and the Marlin-permuted scales handed to the GEMM are exactly
    # what the native weight_scale_inv layer produces and hands over.
    assert ref_gemm["b_scales"] is ref_layer.weight_scale_inv
    assert torch.equal(layer.weight, ref_layer.weight)
    assert torch.equal(layer.weight_scale, ref_layer.weight_scale_inv)
    assert gemm["b_scales"] is layer.weight_scale
    assert torch.equal(gemm["b_q_weight"], ref_gemm["b_q_weight"])
    assert torch.equal(gemm["b_scales"], ref_gemm["b_scales"])
    assert (gemm["size_n"], gemm["size_k"]) == (ref_gemm["size_n"], ref_gemm["size_k"])
    # One scale parameter, under the name the scheme registered.
    assert sorted(n for n, _ in layer.named_parameters()) == ["weight", "weight_scale"]


class IssueProposalKernel(MarlinFP8ScaledMMLinearKernel):
    """The fix proposed in issue #43564, applied to 0.28.0: fall back to
    ``weight_scale`` when ``weight_scale_inv`` is missing, and store the processed
    scale as a new ``weight_scale_inv``; ``apply_weights`` is 0.28.0's."""

    def process_weights_after_loading(self, layer: torch.nn.Module) -> None:
        scale = getattr(layer, "weight_scale_inv", None)
        if scale is None:
            scale = layer.weight_scale
        weight, scale = process_fp8_weight_block_strategy(layer.weight, scale)
        replace_parameter(layer, "weight", weight.data)
        replace_parameter(layer, "weight_scale_inv", scale.data)
        layer.input_scale = None
        prepare_fp8_layer_for_marlin(layer, self.size_k_first, self.marlin_input_dtype)
        del layer.input_scale

    def apply_weights(
        self, layer: torch.nn.Module, x: torch.Tensor, bias: torch.Tensor | None = None
    ) -> torch.Tensor:
        return apply_fp8_marlin_linear(
            input=x,
            weight=layer.weight,
            weight_scale=layer.weight_scale_inv,
            workspace=layer.workspace,
            size_n=layer.output_size_per_partition,
            size_k=layer.input_size_per_partition,
            input_dtype=self.marlin_input_dtype,
            bias=bias,
        )


def test_issue_proposal_hands_gemm_unpermuted_scales(vllm_config, marlin_on_cpu, monkeypatch):
    """Guards the comparison above against a regression to the issue's design: it
    loads and runs, but keeps two scale parameters and the GEMM gets the raw block
    scales instead of the Marlin-permuted ones."""
    ref_layer, ref_gemm = _reference(marlin_on_cpu)
    monkeypatch.setitem(
        linear_kernels._POSSIBLE_FP8_BLOCK_KERNELS,
        current_platform._enum,
        [IssueProposalKernel],
    )

    layer = _load_and_run(CompressedTensorsConfig.from_config(CT_FP8_BLOCK), "weight_scale")
    (gemm,) = marlin_on_cpu.calls

    assert type(layer.scheme.fp8_linear) is IssueProposalKernel
    assert sorted(n for n, _ in layer.named_parameters()) == [
        "weight",
        "weight_scale",
        "weight_scale_inv",
    ]
    assert torch.equal(gemm["b_q_weight"], ref_gemm["b_q_weight"])
    # The Marlin-permuted scales sit unused in weight_scale ...
    assert torch.equal(layer.weight_scale, ref_layer.weight_scale_inv)
    # ... while the GEMM gets the raw [N/128, K/128] checkpoint block scales.
    raw_scales = torch.cat([scale for _, _, scale in _checkpoint()])
    assert gemm["b_scales"] is layer.weight_scale_inv
    assert torch.equal(gemm["b_scales"], raw_scales)
    assert not torch.equal(gemm["b_scales"], ref_gemm["b_scales"])


def test_compressed_tensors_fp8_block_below_sm89_marlin_unchanged(
    vllm_config, marlin_on_cpu, monkeypatch
):
    """Below sm89 the same checkpoint gets CompressedTensorsW8A16Fp8, which renames
    its scale to ``weight_scale_inv`` before calling the kernel (0.28.0's own
    workaround). That path must keep working with the patch."""
    _, ref_gemm = _reference(marlin_on_cpu)
    # Capability check: act as an sm80 GPU, so compressed-tensors picks W8A16.
    monkeypatch.setattr(
        current_platform, "get_device_capability", lambda device_id=0: DeviceCapability(8, 0)
    )

    layer = _load_and_run(CompressedTensorsConfig.from_config(CT_FP8_BLOCK), "weight_scale")
    (gemm,) = marlin_on_cpu.calls

    assert type(layer.scheme) is CompressedTensorsW8A16Fp8
    assert type(layer.scheme.linear_kernel) is MarlinFP8ScaledMMLinearKernel
    assert sorted(n for n, _ in layer.named_parameters()) == ["weight", "weight_scale_inv"]
    assert gemm["b_scales"] is layer.weight_scale_inv
    assert torch.equal(gemm["b_q_weight"], ref_gemm["b_q_weight"])
    assert torch.equal(gemm["b_scales"], ref_gemm["b_scales"])
