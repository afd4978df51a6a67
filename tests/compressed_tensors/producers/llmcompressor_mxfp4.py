"""Make an MXFP4A16 checkpoint with llm-compressor 0.9.0.5, as a user would.

Run as a script, in its own process, so that the compressed-tensors it imports is whichever
PYTHONPATH puts first (the chain test gives it the released 0.13.0 wheel, unpatched):

    python llmcompressor_mxfp4.py OUT_DIR

The model is quantized in bfloat16: compressed-tensors 0.13.0's MXFP4 scale computation
(``round_to_power_2``) accepts nothing else. Writes OUT_DIR/base (the dense model),
OUT_DIR/compressed (the saved MXFP4A16 checkpoint, with its tokenizer) and
OUT_DIR/logits-<dtype>.pt: the producer's fake-quant logits right after oneshot, in
bfloat16, and with the same fake-quant model cast to float32 (its quantized weights are
E2M1 times powers of two, the same values in both dtypes). Prints the compressed_tensors
module path and version it used.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import compressed_tensors
import torch
from datasets import Dataset
from llmcompressor import oneshot
from llmcompressor.modifiers.quantization import QuantizationModifier
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import WhitespaceSplit
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

VOCAB = 160
INPUT_IDS = torch.arange(5, 5 + 20).unsqueeze(0)
# one layer scaled by 2**-9, so its exponents sit far below the others'
SMALL_LAYER = "model.layers.0.mlp.up_proj"


def tokenizer() -> PreTrainedTokenizerFast:
    words = Tokenizer(WordLevel({str(i): i for i in range(VOCAB)}, unk_token="0"))
    words.pre_tokenizer = WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=words, pad_token="0", unk_token="0")


def calibration() -> Dataset:
    generator = torch.Generator().manual_seed(3)
    rows = [torch.randint(0, VOCAB, (24,), generator=generator).tolist() for _ in range(6)]
    return Dataset.from_dict({"input_ids": rows, "attention_mask": [[1] * 24 for _ in rows]})


def main(out: Path) -> None:
    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=96,
        intermediate_size=160,
        num_hidden_layers=2,
        num_attention_heads=3,
        num_key_value_heads=1,
        max_position_embeddings=48,
        tie_word_embeddings=False,
    )
    torch.manual_seed(7)
    dense = LlamaForCausalLM(config)
    with torch.no_grad():
        dense.get_submodule(SMALL_LAYER).weight.mul_(2.0**-9)
    dense.save_pretrained(out / "base")
    model = LlamaForCausalLM.from_pretrained(out / "base", dtype=torch.bfloat16)
    oneshot(
        model=model,
        dataset=calibration(),
        tokenizer=tokenizer(),
        recipe=QuantizationModifier(targets="Linear", scheme="MXFP4A16", ignore=["lm_head"]),
        num_calibration_samples=6,
        max_seq_length=24,
        pipeline="basic",
    )
    with torch.no_grad():
        torch.save(model(INPUT_IDS).logits, out / "logits-bfloat16.pt")
        model.to(torch.float32)
        torch.save(model(INPUT_IDS).logits, out / "logits-float32.pt")
        model.to(torch.bfloat16)
    model.save_pretrained(out / "compressed", save_compressed=True)
    tokenizer().save_pretrained(out / "compressed")
    used = {"file": compressed_tensors.__file__, "version": compressed_tensors.__version__}
    print(json.dumps(used))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
