"""End to end: quantize a tiny random Llama to NVFP4, save it, load it with transformers.

Covers the whole stack: the checkpoint is written in the `nvfp4-pack-quantized` layout by
compressed-tensors' own API, loaded with both `run_compressed` modes and three dtypes, run
forward, and compared with the fake-quant reference: the calibrated, uncompressed model, made
in the load dtype the way a producer makes it. No download: the model is built from a config
with random weights.
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
# The loaded model runs the reference's operations on the reference's values in every
# dtype, so the logits must be equal. In half precision that holds only if the scale
# arithmetic runs in float32 as in the reference, whatever dtype transformers loaded the
# global scales in: even a rounding there flips dynamic fp4 activation codes (steps up to a
# third of the value), which moves the logits by several per cent.


class Checkpoint(NamedTuple):
    path: Path
    dense: Path
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
            lambda _m, args, name=name: amax.__setitem__(name, args[0].abs().amax())
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
    """Min-max qparams: global scales from the tensor range, fp8 group scales per 16.

    From the bfloat16 weights and activations, as llm-compressor computes them: the global
    scales are float32 tensors holding bfloat16 values.
    """
    for name, module in model.named_modules():
        if not hasattr(module, "weight_global_scale"):
            continue
        weight = module.weight
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
    dense: Path,
    state: dict[str, torch.Tensor],
    config: QuantizationConfig,
    input_ids: torch.Tensor,
    dtype: torch.dtype,
) -> torch.Tensor:
    """Logits of an uncompressed twin with the same weights and qparams, made in dtype.

    The twin is loaded in dtype, as a producer loads the model it quantizes; its qparams
    are registered as compressed-tensors registers them (global scales in float32) and
    filled with the calibrated values. Casting a quantized model instead would round its
    global scales, which is the defect the half-precision cases catch.
    """
    twin = LlamaForCausalLM.from_pretrained(dense, dtype=dtype)
    apply_quantization_config(twin, config)
    twin.load_state_dict(state)
    with torch.no_grad():
        return twin(input_ids).logits


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Checkpoint:
    model = tiny_llama()
    root = tmp_path_factory.mktemp("nvfp4")
    dense = root / "dense"
    model.save_pretrained(dense)
    input_ids = torch.arange(3, 3 + 24).unsqueeze(0)
    amax = input_amax(model, input_ids)
    config = QuantizationConfig(
        config_groups={"group_0": preset_name_to_scheme("NVFP4", ["Linear"])},
        ignore=["lm_head"],
    )
    apply_quantization_config(model, config)
    calibrate_nvfp4(model, amax)
    references = {
        dtype: fake_quant_logits(dense, model.state_dict(), config, input_ids, dtype)
        for dtype in (torch.float16, torch.bfloat16, torch.float32)
    }

    path = root / "tiny-llama"
    compressor = ModelCompressor.from_pretrained_model(model, quantization_format=FORMAT)
    compressor.compress_model(model)
    model.save_pretrained(path)
    compressor.update_config(path)
    return Checkpoint(path, dense, input_ids, references)


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
    assert dtype is None or logits.dtype == dtype

    reference = checkpoint.reference_logits[logits.dtype]
    error = relative_error(logits.float(), reference.float())
    assert torch.equal(logits, reference), f"{case}, run_compressed={run_compressed}: {error:.2e}"
