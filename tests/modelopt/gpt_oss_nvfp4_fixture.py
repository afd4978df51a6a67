"""Write the tiny GptOss NVFP4 checkpoint that the vLLM tests load (ModelOpt's export).

The vLLM tests run in the vLLM venv, which has no ModelOpt (and a transformers 5 that
ModelOpt 0.44.0 does not pin), so the ModelOpt-made checkpoint is produced here, in the
ModelOpt test venv, and committed under ``tests/vllm/data/gpt_oss_nvfp4_modelopt/``
(about 100 KB). ``test_gpt_oss_nvfp4_fixture.py`` checks that the committed copy is what
the patched export writes today. To regenerate it (from the repository root):

    TRITON_INTERPRET=1 build/venv/modelopt@0.44.0/bin/python tests/modelopt/gpt_oss_nvfp4_fixture.py

The model has the shapes of ``tests/vllm/test_gpt_oss_nvfp4_modelopt.py`` and is quantized
with the static NVFP4 weight-only config of ``test_static_nvfp4_export.py`` (W4A16_NVFP4,
algorithm ``max``). As in gpt-oss's own MXFP4 release and ``fp4stack cast``, only the MoE
experts are quantized: attention, router, embeddings and head stay bf16.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TRITON_INTERPRET", "1")

import modelopt.torch.quantization as mtq
import torch
import transformers
from modelopt.torch.export import export_hf_checkpoint

sys.path.insert(0, str(Path(__file__).parent))
from test_static_nvfp4_export import static_nvfp4_weight_only_cfg

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "vllm" / "data" / "gpt_oss_nvfp4_modelopt"
KEEP = ("config.json", "hf_quant_config.json", "model.safetensors")

TINY_GPT_OSS = {
    "hidden_size": 64,
    "intermediate_size": 64,
    "num_hidden_layers": 1,
    "num_local_experts": 4,
    "num_experts_per_tok": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,
    "vocab_size": 128,
    "max_position_embeddings": 256,
    "sliding_window": 128,
    "layer_types": ["full_attention"],
    "architectures": ["GptOssForCausalLM"],
}


def build() -> torch.nn.Module:
    torch.manual_seed(46641)
    model = transformers.GptOssForCausalLM(transformers.GptOssConfig(**TINY_GPT_OSS))
    model = model.to(torch.bfloat16)
    with torch.no_grad():  # biases are zero-initialised: give them values to load
        for name, p in model.named_parameters():
            if name.endswith("_bias"):
                p.normal_()
    return model


def experts_only_cfg() -> dict:
    cfg = static_nvfp4_weight_only_cfg()
    cfg["quant_cfg"] = [
        *cfg["quant_cfg"],
        {"quantizer_name": "*self_attn*", "enable": False},
        {"quantizer_name": "*router*", "enable": False},
    ]
    return cfg


def label_weight_only(out: Path) -> None:
    """Label the weight-only export W4A16_NVFP4, as ModelOpt 0.47 does.

    ModelOpt 0.44.0 labels this export ``NVFP4`` and lists ``input_activations`` in
    ``config.json`` although no input quantizer ran and no ``input_scale`` was written;
    0.47.0 writes ``W4A16_NVFP4`` and no ``input_activations`` for the same model
    (``shared/research/modelopt-nvfp4-export-format.md``). Only these two labels change;
    every tensor is the export's.
    """
    hf_quant = json.loads((out / "hf_quant_config.json").read_text())
    hf_quant["quantization"]["quant_algo"] = "W4A16_NVFP4"
    (out / "hf_quant_config.json").write_text(json.dumps(hf_quant, indent=4))
    config = json.loads((out / "config.json").read_text())
    config["quantization_config"]["quant_algo"] = "W4A16_NVFP4"
    for group in config["quantization_config"]["config_groups"].values():
        group.pop("input_activations", None)
    (out / "config.json").write_text(json.dumps(config, indent=2))


def write(out: Path) -> Path:
    model = build()
    mtq.quantize(model, experts_only_cfg(), forward_loop=None)
    export_hf_checkpoint(model, export_dir=out)
    for f in out.iterdir():
        if f.name not in KEEP:
            f.unlink()
    label_weight_only(out)
    return out


if __name__ == "__main__":
    FIXTURE.mkdir(parents=True, exist_ok=True)
    print(write(FIXTURE))
