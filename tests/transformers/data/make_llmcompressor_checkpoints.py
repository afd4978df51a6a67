"""Make the small llm-compressor checkpoints that the transformers 5.x tests read.

Each checkpoint is made the way llm-compressor's users make one: a randomly initialised tiny
model in bfloat16, `oneshot` with `QuantizationModifier(targets="Linear", scheme=...)`, then
`model.save_pretrained(dir, save_compressed=True)`. Beside it, `reference.safetensors` holds
the producer's own fake-quant logits for a fixed input (the quantized model right after
`oneshot`, forward in bfloat16, and the same model cast to float32), and `producer.json`
records the versions, the scheme, the architecture and how the MoE experts were handled.

Everything is seeded and nothing is downloaded (no Hub); the checkpoints carry no tokenizer.
Two runs write the same bytes.

The producer env (build/ is git-ignored; torch's CPU build first, from the local wheels):

    V=build/venv/producer-llmcompressor-0.14.0.1
    UV=$(build/venv/tool/bin/python -c 'from uv import find_uv_bin; print(find_uv_bin())')
    python3 -m venv $V
    $UV pip install --python $V/bin/python --find-links /opt/wheels torch==2.13.0
    $UV pip install --python $V/bin/python --find-links /opt/wheels \
        llmcompressor==0.14.0.1 torch==2.13.0 datasets

Run it from the repository root (it rewrites every checkpoint directory it makes):

    build/venv/producer-llmcompressor-0.14.0.1/bin/python \
        tests/transformers/data/make_llmcompressor_checkpoints.py [--only ARCH-SCHEME ...]

A scheme that the producer cannot make leaves `FAILED.txt` (the error) in its directory.
"""

from __future__ import annotations

import os

# nothing is downloaded: set before transformers reads it, a Hub look-up fails at once
os.environ["HF_HUB_OFFLINE"] = "1"

import argparse
import copy
import json
import platform
import shutil
import sys
import tempfile
import traceback
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import torch
from datasets import Dataset
from llmcompressor import oneshot
from llmcompressor.modifiers.quantization import QuantizationModifier
from safetensors import safe_open
from safetensors.torch import save_file
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import WhitespaceSplit
from transformers import (
    LlamaConfig,
    LlamaForCausalLM,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerFast,
    Qwen3MoeConfig,
    Qwen3MoeForCausalLM,
)

PRODUCER = "llmcompressor-0.14.0.1"
OUT_ROOT = Path(__file__).resolve().parent / PRODUCER

SCHEMES = ["NVFP4", "NVFP4A16", "MXFP4A16", "FP8_BLOCK"]
# schemes whose input activations have a static (calibrated) scale need calibration data
CALIBRATED_SCHEMES = {"NVFP4"}

MODEL_SEED = 0
DATA_SEED = 1
INPUT_SEED = 2
VOCAB = 512
SEQ_LEN = 16
NUM_CALIBRATION_SAMPLES = 8

# hidden 128, head_dim 64 (4 heads, 2 kv heads): every Linear's in and out features are
# multiples of 128, so FP8_BLOCK's 128x128 blocks tile them, and of NVFP4's 16 and MXFP4's 32.
# Hidden 128 rather than 256 keeps the eight checkpoints near 6 MB together (about 0.6 MB a
# llama one, 0.9 MB a qwen3_moe one, 1.3 MB for the MoE in FP8_BLOCK).
COMMON: dict[str, Any] = {
    "vocab_size": VOCAB,
    "hidden_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 64,
    "max_position_embeddings": 64,
    "tie_word_embeddings": False,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "pad_token_id": 0,
}


def llama_config() -> LlamaConfig:
    return LlamaConfig(intermediate_size=256, **COMMON)


def qwen3_moe_config() -> Qwen3MoeConfig:
    return Qwen3MoeConfig(
        num_experts=4,
        num_experts_per_tok=2,
        moe_intermediate_size=256,
        intermediate_size=256,
        decoder_sparse_step=1,
        norm_topk_prob=True,
        **COMMON,
    )


ARCHS: dict[str, tuple[Callable[[], PretrainedConfig], type[PreTrainedModel], list[str]]] = {
    "llama": (llama_config, LlamaForCausalLM, ["lm_head"]),
    # the router (`mlp.gate`) stays in bfloat16, as in every published MoE checkpoint
    "qwen3_moe": (qwen3_moe_config, Qwen3MoeForCausalLM, ["lm_head", "re:.*mlp.gate$"]),
}


def random_ids(seed: int, rows: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    # ids from 3 up: 0, 1 and 2 are pad, bos and eos
    return torch.randint(3, VOCAB, (rows, SEQ_LEN), generator=generator, dtype=torch.int64)


def calibration_dataset() -> Dataset:
    ids = random_ids(DATA_SEED, NUM_CALIBRATION_SAMPLES)
    return Dataset.from_dict(
        {"input_ids": ids.tolist(), "attention_mask": torch.ones_like(ids).tolist()}
    )


def word_tokenizer() -> PreTrainedTokenizerFast:
    """oneshot asks for a processor when given a dataset; the ids are already tokens, so this
    one (token i is the word "i") only has to exist. It is not saved with the checkpoint."""
    vocab = {str(i): i for i in range(VOCAB)}
    backend = Tokenizer(WordLevel(vocab, unk_token="0"))
    backend.pre_tokenizer = WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="0", bos_token="1", eos_token="2", unk_token="0"
    )


# How the fused (3-D) experts of transformers 5.x become per-expert Linear modules. Not with
# `load_quantizable_moe`: for qwen3_moe it registers a transformers patch mapping, and
# transformers 5.17's `apply_patches` then walks every transformers module with dir(), which
# imports the image processors and fails without torchvision (CPU envs have none:
# "No module named 'torchvision'"). oneshot's own fallback, `linearize_moe` after a plain load,
# makes the same LinearExperts2D modules.
LINEARIZED_BY = "oneshot's post-load linearize_moe (no load_quantizable_moe)"


def make_model(arch: str, dense: Path) -> PreTrainedModel:
    """The seeded random model, saved in bfloat16 and loaded back as users load one.

    oneshot reads the config at `model.config.name_or_path` again (and so does its
    save_pretrained, which rewrites config.json from it), so a model that exists only in memory
    is refused: `dense` must outlive the save.
    """
    make_config, model_cls, _ = ARCHS[arch]
    torch.manual_seed(MODEL_SEED)
    model_cls(make_config()).to(torch.bfloat16).save_pretrained(dense)
    return model_cls.from_pretrained(dense, dtype=torch.bfloat16).eval()


def expert_handling(model: PreTrainedModel) -> dict[str, Any]:
    """How llm-compressor represented layer 0's experts after `oneshot`."""
    experts = model.get_submodule("model.layers.0.mlp.experts")
    linears = [m for m in experts.modules() if isinstance(m, torch.nn.Linear)]
    return {
        "experts_module_after_oneshot": f"{type(experts).__module__}.{type(experts).__name__}",
        "per_expert_linears": len(linears),
        "quantized_per_expert_linears": sum(
            getattr(m, "quantization_scheme", None) is not None for m in linears
        ),
        "fused_3d_parameters_left": sorted(
            name for name, p in experts.named_parameters(recurse=False) if p.dim() == 3
        ),
    }


def saved_keys(path: Path) -> list[str]:
    keys: list[str] = []
    for shard in sorted(path.glob("*.safetensors")):
        if shard.name == "reference.safetensors":
            continue
        with safe_open(str(shard), "pt") as f:
            keys.extend(f.keys())
    return sorted(keys)


def produce(arch: str, scheme: str, out: Path) -> dict[str, Any]:
    _, _, ignore = ARCHS[arch]
    recipe = QuantizationModifier(targets="Linear", scheme=scheme, ignore=ignore)
    kwargs: dict[str, Any] = {}
    if scheme in CALIBRATED_SCHEMES:
        kwargs = {
            "dataset": calibration_dataset(),
            "processor": word_tokenizer(),
            "num_calibration_samples": NUM_CALIBRATION_SAMPLES,
            "max_seq_length": SEQ_LEN,
            "shuffle_calibration_samples": False,
        }
    with tempfile.TemporaryDirectory() as dense:
        model = make_model(arch, Path(dense))
        oneshot(model=model, recipe=recipe, moe_calibrate_all_experts=True, **kwargs)

        # the producer's fake-quant forward, before save_pretrained compresses the model
        input_ids = random_ids(INPUT_SEED, 1)
        with torch.no_grad():
            logits_bf16 = model(input_ids=input_ids).logits.float()
            model32 = copy.deepcopy(model).to(torch.float32)
            logits_fp32 = model32(input_ids=input_ids).logits.float()
        del model32
        if not (logits_bf16.isfinite().all() and logits_fp32.isfinite().all()):
            raise RuntimeError("the producer's logits are not finite")

        moe = expert_handling(model) if arch == "qwen3_moe" else None
        if moe is not None:
            moe["linearized_by"] = LINEARIZED_BY
            moe["note"] = (
                "oneshot replaced each fused Qwen3MoeExperts (3-D gate_up_proj/down_proj) with "
                "LinearExperts2D: one gate_proj/up_proj/down_proj nn.Linear per expert, each "
                "quantized like any Linear; with moe_calibrate_all_experts every expert sees "
                "every calibration token. save_pretrained writes them per expert "
                "(experts.<i>.<proj>.*), the layout of the original Qwen3-MoE checkpoints; "
                "the router (mlp.gate) is left in bfloat16."
            )
        model.save_pretrained(out, save_compressed=True)
        save_file(
            {
                "input_ids": input_ids.contiguous(),
                "logits_bfloat16": logits_bf16.contiguous(),
                "logits_float32": logits_fp32.contiguous(),
            },
            str(out / "reference.safetensors"),
        )
        info: dict[str, Any] = {}
        if moe is not None:
            keys = saved_keys(out)
            moe["saved_expert_keys_layer0_expert0"] = [
                k for k in keys if k.startswith("model.layers.0.mlp.experts.0.")
            ]
            moe["saved_fused_3d_expert_keys_layer0"] = [
                k
                for k in keys
                if k.startswith("model.layers.0.mlp.experts.") and k.split(".")[5][:1].isalpha()
            ]
            moe["saved_router_keys_layer0"] = [
                k for k in keys if k.startswith("model.layers.0.mlp.gate.")
            ]
            moe["expert_weights_quantized"] = any(
                k.startswith("model.layers.0.mlp.experts.0.") and k.endswith("weight_scale")
                for k in keys
            )
            info["moe"] = moe
        return info


def versions() -> dict[str, str]:
    names = ["llmcompressor", "compressed-tensors", "transformers", "torch", "safetensors"]
    found = {name: version(name) for name in names}
    found["python"] = platform.python_version()
    return found


def write_producer_json(out: Path, arch: str, scheme: str, extra: dict[str, Any]) -> None:
    _, model_cls, ignore = ARCHS[arch]
    record: dict[str, Any] = {
        "producer": PRODUCER,
        "versions": versions(),
        "arch": arch,
        "model_class": model_cls.__name__,
        "scheme": scheme,
        "recipe": {"modifier": "QuantizationModifier", "targets": "Linear", "ignore": ignore},
        "calibration": (
            {
                "samples": NUM_CALIBRATION_SAMPLES,
                "seq_len": SEQ_LEN,
                "seed": DATA_SEED,
                "moe_calibrate_all_experts": True,
            }
            if scheme in CALIBRATED_SCHEMES
            else None
        ),
        "model_seed": MODEL_SEED,
        "input_seed": INPUT_SEED,
        "dtype": "bfloat16",
        "reference": {
            "input_ids": "int64 (1, 16)",
            "logits_bfloat16": "float32 logits of the bfloat16 fake-quant model",
            "logits_float32": "float32 logits of the same model cast to float32",
        },
        **extra,
    }
    (out / "producer.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--only", nargs="*", default=None, help="ARCH-SCHEME names to make")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)

    failures = 0
    for arch in ARCHS:
        for scheme in SCHEMES:
            name = f"{arch}-{scheme}"
            if args.only is not None and name not in args.only:
                continue
            out = OUT_ROOT / name
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir(parents=True)
            print(f"== {name}", flush=True)
            try:
                extra = produce(arch, scheme, out)
            except Exception as exc:
                failures += 1
                shutil.rmtree(out)
                out.mkdir(parents=True)
                first = f"{type(exc).__name__}: {exc}".splitlines()[0]
                (out / "FAILED.txt").write_text(
                    f"{first}\n\n{versions()}\n\n{traceback.format_exc()}"
                )
                print(f"FAILED {name}: {first}", flush=True)
                continue
            write_producer_json(out, arch, scheme, extra)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
