"""transformers 4.57.6 loading NVFP4 checkpoints in float16: the global scales stay float32.

An NVFP4 global scale is 448 * 6 / amax, and compressed-tensors registers it as a float32
parameter. For a weight with amax below about 0.041 it is above float16's largest value
(65504). transformers 4.57.6's loader cast every floating checkpoint tensor of a quantized
model to the load dtype, so in a float16 load that scale became inf: the layer's weights
dequantized to 0 (`run_compressed=True`) or NaN (`run_compressed=False`).

The checkpoints are made by llm-compressor 0.9.0.5 (the release that pins compressed-tensors
0.13.0) from a tiny random Llama whose `SMALL_LAYER` is scaled to amax of about 0.01. The
venv holds our patched compressed-tensors 0.13.0 (`wheels_from` in upstream/pins.toml):
that is what runs the float16 forward; the code under test is transformers' loader.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from datasets import Dataset
from llmcompressor import oneshot
from llmcompressor.modifiers.quantization import QuantizationModifier
from safetensors.torch import load_file
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import WhitespaceSplit
from transformers import (
    AutoModelForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
)
from transformers.utils.quantization_config import CompressedTensorsConfig

VOCAB = 128
INPUT_IDS = torch.arange(3, 3 + 24).unsqueeze(0)
SMALL_LAYER = "model.layers.1.mlp.down_proj"  # amax about 0.01: global scale about 3.2e5
FLOAT16_MAX = torch.finfo(torch.float16).max
SCHEMES = ["NVFP4", "NVFP4A16"]
RUN_COMPRESSED = pytest.mark.parametrize(
    "run_compressed", [True, False], ids=lambda v: f"run_compressed-{v}"
)


def word_level_tokenizer() -> PreTrainedTokenizerFast:
    """A tokenizer without a download: token i is the word "i"."""
    tokenizer = Tokenizer(WordLevel({str(i): i for i in range(VOCAB)}, unk_token="0"))
    tokenizer.pre_tokenizer = WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="0", unk_token="0")


def produce(directory: Path, scheme: str) -> Path:
    """A bfloat16 model quantized by llm-compressor and saved compressed, as users do."""
    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    torch.manual_seed(0)
    dense = LlamaForCausalLM(config)
    with torch.no_grad():
        dense.get_submodule(SMALL_LAYER).weight.mul_(0.1)
    dense.save_pretrained(directory / "base")

    model = LlamaForCausalLM.from_pretrained(directory / "base", dtype=torch.bfloat16)
    generator = torch.Generator().manual_seed(1)
    rows = [torch.randint(0, VOCAB, (32,), generator=generator).tolist() for _ in range(8)]
    dataset = Dataset.from_dict({"input_ids": rows, "attention_mask": [[1] * 32 for _ in rows]})
    oneshot(
        model=model,
        dataset=dataset,
        tokenizer=word_level_tokenizer(),
        recipe=QuantizationModifier(targets="Linear", scheme=scheme, ignore=["lm_head"]),
        num_calibration_samples=8,
        max_seq_length=32,
        pipeline="basic",
    )
    path = directory / "compressed"
    model.save_pretrained(path, save_compressed=True)
    return path


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Checkpoints by scheme, each made once, when a test first asks."""
    made: dict[str, Path] = {}

    def get(scheme: str) -> Path:
        if scheme not in made:
            made[scheme] = produce(tmp_path_factory.mktemp(scheme), scheme)
        return made[scheme]

    return get


def load_float16(path: Path, run_compressed: bool) -> torch.nn.Module:
    return AutoModelForCausalLM.from_pretrained(
        path,
        dtype=torch.float16,
        quantization_config=CompressedTensorsConfig(run_compressed=run_compressed),
    )


def global_scales(path: Path) -> dict[str, torch.Tensor]:
    tensors = load_file(path / "model.safetensors")
    return {name: t for name, t in tensors.items() if name.endswith("_global_scale")}


def test_small_layer_global_scale_overflows_float16(checkpoint):
    """The precondition: the producer's file holds a float32 global scale above 65504."""
    scale = global_scales(checkpoint("NVFP4"))[f"{SMALL_LAYER}.weight_global_scale"]
    assert scale.dtype == torch.float32
    assert scale.item() > FLOAT16_MAX


@RUN_COMPRESSED
@pytest.mark.parametrize("scheme", SCHEMES)
def test_float16_load_keeps_float32_global_scales(checkpoint, scheme, run_compressed):
    """Every global scale in the file is loaded as the float32 compressed-tensors registered,
    with the file's value, and the float16 model's logits are finite."""
    path = checkpoint(scheme)
    model = load_float16(path, run_compressed)
    expected = global_scales(path)
    assert f"{SMALL_LAYER}.weight_global_scale" in expected
    for name, value in expected.items():
        loaded = model.get_parameter(name)
        assert loaded.dtype == torch.float32, name
        assert torch.equal(loaded, value), f"{name}: {loaded.item()} != {value.item()}"
    with torch.no_grad():
        logits = model(INPUT_IDS).logits
    assert logits.dtype == torch.float16
    assert logits.isfinite().all()


@pytest.mark.parametrize("scheme", SCHEMES)
def test_float16_load_casts_the_other_tensors_to_float16(checkpoint, scheme):
    """Only the float32 parameters compressed-tensors registered keep float32: the model's
    own floating tensors (embeddings, norms, the unquantized lm_head) still load in float16,
    and the FP8 group scales keep the checkpoint's float8."""
    path = checkpoint(scheme)
    model = load_float16(path, run_compressed=True)
    names = load_file(path / "model.safetensors")
    for name, value in names.items():
        loaded = model.get_parameter(name)
        if name.endswith("_global_scale"):
            continue
        if value.dtype == torch.float8_e4m3fn or not value.dtype.is_floating_point:
            assert loaded.dtype == value.dtype, name
        else:
            assert loaded.dtype == torch.float16, name
