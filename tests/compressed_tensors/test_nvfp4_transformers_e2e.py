"""End to end: quantize a tiny random Llama to NVFP4, save it, load it with transformers.

Covers the whole stack: the checkpoint is written in the `nvfp4-pack-quantized` layout by
compressed-tensors' own API, loaded with both `run_compressed` modes and three dtypes, run
forward, and compared with the fake-quant reference (the calibrated, uncompressed model in
float32). No download: the model is built from a config with random weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import pytest
import torch
from compressed_tensors.compressors import ModelCompressor
from compressed_tensors.quantization import (
    QuantizationConfig,
    apply_quantization_config,
    preset_name_to_scheme,
)
from compressed_tensors.quantization.utils import calculate_qparams, generate_gparam
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM
from transformers.utils.quantization_config import CompressedTensorsConfig

FORMAT = "nvfp4-pack-quantized"
GROUP = 16

# dtype passed to from_pretrained; transformers 4.57 loads compressed-tensors models in
# float16 when it is unset.
DTYPE_CASES = {"dtype-unset": None, "bfloat16": torch.bfloat16, "float32": torch.float32}
# float32 runs the same ops as the reference: the measured error is 0.
FLOAT32_BOUND = 1e-5
# In half precision, rounding flips some dynamic fp4 activation codes (steps up to a third
# of the value), so even the fake-quant reference run in that dtype lands 6-9 % (relative
# L2) from its float32 run. A correct load must stay within twice that spread; a lost or
# misapplied scale is off by orders of magnitude more.
HALF_SPREAD_FACTOR = 2.0


class Checkpoint(NamedTuple):
    path: Path
    input_ids: torch.Tensor
    reference_logits: dict[torch.dtype, torch.Tensor]


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return ((actual - expected).norm() / expected.norm()).item()


def tiny_llama() -> LlamaForCausalLM:
    config = LlamaConfig(
        vocab_size=128,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    torch.manual_seed(0)
    return LlamaForCausalLM(config).to(torch.bfloat16)


def input_amax(model: torch.nn.Module, input_ids: torch.Tensor) -> dict[str, torch.Tensor]:
    """Largest absolute input each Linear sees in one dense forward."""
    amax: dict[str, torch.Tensor] = {}
    hooks = [
        module.register_forward_pre_hook(
            lambda _m, args, name=name: amax.__setitem__(name, args[0].abs().amax().float())
        )
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear)
    ]
    with torch.no_grad():
        model(input_ids)
    for hook in hooks:
        hook.remove()
    return amax


def calibrate_nvfp4(model: torch.nn.Module, amax: dict[str, torch.Tensor]) -> None:
    """Min-max qparams: global scales from the tensor range, fp8 group scales per 16."""
    for name, module in model.named_modules():
        if not hasattr(module, "weight_global_scale"):
            continue
        weight = module.weight.float()
        global_scale = generate_gparam(weight.amin(), weight.amax())
        groups = weight.reshape(weight.shape[0], -1, GROUP)
        scale, _ = calculate_qparams(
            groups.amin(dim=-1),
            groups.amax(dim=-1),
            module.quantization_scheme.weights,
            global_scale=global_scale,
        )
        module.weight_global_scale.data.copy_(global_scale)
        module.weight_scale.data.copy_(scale)
        module.input_global_scale.data.copy_(generate_gparam(-amax[name], amax[name]))


def fake_quant_logits(
    state: dict[str, torch.Tensor],
    config: QuantizationConfig,
    input_ids: torch.Tensor,
    dtype: torch.dtype,
) -> torch.Tensor:
    """Logits of an uncompressed twin with the same weights and qparams, run in dtype.

    A twin, because casting the quantized model itself would round its float32 global
    scales, and a deepcopy keeps the fake-quant forwards bound to the original modules.
    """
    twin = tiny_llama().float()
    apply_quantization_config(twin, config)
    twin.load_state_dict(state)
    with torch.no_grad():
        return twin.to(dtype)(input_ids).logits.float()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Checkpoint:
    model = tiny_llama()
    input_ids = torch.arange(3, 3 + 24).unsqueeze(0)
    amax = input_amax(model, input_ids)
    config = QuantizationConfig(
        config_groups={"group_0": preset_name_to_scheme("NVFP4", ["Linear"])},
        ignore=["lm_head"],
    )
    apply_quantization_config(model, config)
    calibrate_nvfp4(model, amax)
    references = {
        dtype: fake_quant_logits(model.state_dict(), config, input_ids, dtype)
        for dtype in (torch.float16, torch.bfloat16, torch.float32)
    }

    path = tmp_path_factory.mktemp("nvfp4") / "tiny-llama"
    compressor = ModelCompressor.from_pretrained_model(model, quantization_format=FORMAT)
    compressor.compress_model(model)
    model.save_pretrained(path)
    compressor.update_config(path)
    return Checkpoint(path, input_ids, references)


@pytest.mark.parametrize("run_compressed", [True, False], ids=lambda v: f"run_compressed-{v}")
@pytest.mark.parametrize("case", list(DTYPE_CASES))
def test_load_and_forward_matches_fake_quant(checkpoint: Checkpoint, run_compressed, case):
    dtype = DTYPE_CASES[case]
    kwargs = {} if dtype is None else {"dtype": dtype}
    model = AutoModelForCausalLM.from_pretrained(
        checkpoint.path,
        quantization_config=CompressedTensorsConfig(run_compressed=run_compressed),
        **kwargs,
    )

    with torch.no_grad():
        logits = model(checkpoint.input_ids).logits
    logits_dtype = logits.dtype
    logits = logits.float()
    assert dtype is None or logits_dtype == dtype

    references = checkpoint.reference_logits
    reference = references[torch.float32]
    error = relative_error(logits, reference)
    if logits_dtype == torch.float32:
        bound = FLOAT32_BOUND
    else:
        bound = HALF_SPREAD_FACTOR * relative_error(references[logits_dtype], reference)
    assert error < bound, f"{case}, run_compressed={run_compressed}: {error:.2e} >= {bound:.2e}"
