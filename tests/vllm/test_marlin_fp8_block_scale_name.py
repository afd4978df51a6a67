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

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import torch
import vllm._custom_ops as ops
from vllm.config import VllmConfig
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

from .fp8_block_marlin_cpu import (
    HIDDEN,
    checkpoint,
    cpu_vllm_config,
    ct_fp8_block_config,
    fp8_block_layer,
    load_checkpoint,
    native_fp8_block_config,
    use_marlin_on_cpu,
)

SEED = 43564
# The FP8_BLOCK layout llmcompressor / model_free_ptq write, with dynamic activations.
CT_FP8_BLOCK = ct_fp8_block_config(
    input_activations={
        "num_bits": 8,
        "type": "float",
        "strategy": "group",
        "group_size": 128,
        "symmetric": True,
        "dynamic": True,
    }
)


@dataclass
class GemmRecorder:
    """Stands in for ``ops.marlin_gemm`` (a CUDA kernel): records its inputs."""

    calls: list[dict[str, object]] = field(default_factory=list)

    def __call__(self, **kwargs: object) -> torch.Tensor:
        self.calls.append(kwargs)
        a = kwargs["a"]
        assert isinstance(a, torch.Tensor)
        return torch.zeros(a.shape[0], int(kwargs["size_n"]), dtype=a.dtype)


@pytest.fixture(scope="module")
def vllm_config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmConfig]:
    with cpu_vllm_config(tmp_path_factory) as config:
        yield config


@pytest.fixture
def marlin_on_cpu(monkeypatch: pytest.MonkeyPatch) -> GemmRecorder:
    """The GPU-bound pieces of the FP8 Marlin path replaced, and the CUDA GEMM recorded."""
    use_marlin_on_cpu(monkeypatch)
    recorder = GemmRecorder()
    monkeypatch.setattr(ops, "marlin_gemm", recorder)
    return recorder


def _load_and_run(
    quant_config: CompressedTensorsConfig | Fp8Config, scale_name: str
) -> MergedColumnParallelLinear:
    """Build the layer, load the checkpoint through weight_loader, process, forward."""
    layer = fp8_block_layer(quant_config)
    load_checkpoint(layer, scale_name, SEED)
    x = torch.randn(3, HIDDEN, generator=torch.Generator().manual_seed(0))
    layer(x.to(torch.bfloat16))
    return layer


def _reference(recorder: GemmRecorder) -> tuple[MergedColumnParallelLinear, dict]:
    """The same checkpoint under the native name: Fp8LinearMethod's ``weight_scale_inv``."""
    layer = _load_and_run(native_fp8_block_config(), "weight_scale_inv")
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
    raw_scales = torch.cat([scale for _, _, scale in checkpoint(SEED)])
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
