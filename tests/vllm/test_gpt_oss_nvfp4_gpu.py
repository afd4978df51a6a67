"""GPU: serve the tiny NVFP4 gpt-oss checkpoint with ``vllm.LLM`` and compare with transformers.

Skipped without CUDA. On a machine with an NVIDIA GPU (sm >= 80: NVFP4 W4A16 MoE runs on
Marlin), with the patched wheel and a CUDA torch installed into one venv, run from the
repository root:

    python -m pytest -v tests/vllm/test_gpt_oss_nvfp4_gpu.py

The checkpoint is the ``fp4stack cast`` one of ``test_gpt_oss_nvfp4_modelopt.py`` (and the
committed ModelOpt export). The reference is transformers' ``GptOssForCausalLM`` in bf16 on a
bf16 checkpoint holding the same dequantized expert values (exact in bf16), so the two
models differ only by kernels and bf16 arithmetic. The test compares vLLM's prompt
logprobs of every position's true next token with transformers' log-softmax.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from .test_gpt_oss_nvfp4_modelopt import (
    EXPERTS,
    MODELOPT_FIXTURE,
    checkpoint_experts,
    make_mxfp4_source,
    run_cast,
)

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

PROMPT = [1, 17, 33, 5, 99, 64, 2, 81, 12, 7, 120, 45, 3, 3, 90, 27]
TOLERANCE = 0.15  # nats, bf16 over one layer plus Marlin's bf16 accumulation


def dequantized_bf16(ckpt: Path, out: Path) -> Path:
    """The same model as a plain bf16 gpt-oss checkpoint (experts in the BMM layout)."""
    out.mkdir(parents=True, exist_ok=True)
    tensors = load_file(str(ckpt / "model.safetensors"))
    values = checkpoint_experts(ckpt)
    for proj, param in (("gate_up_proj", "w13"), ("down_proj", "w2")):
        for suffix in ("", "_weight_scale", "_weight_scale_2", "_input_scale"):
            tensors.pop(f"{EXPERTS}.{proj}{suffix}", None)
        tensors[f"{EXPERTS}.{proj}"] = values[param].transpose(-1, -2).to(torch.bfloat16)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(out / "model.safetensors"))
    config = json.loads((ckpt / "config.json").read_text())
    config.pop("quantization_config", None)
    (out / "config.json").write_text(json.dumps(config))
    return out


@pytest.mark.parametrize("source", ["cast", "modelopt"])
def test_llm_prompt_logprobs_match_transformers_bf16(source: str, tmp_path: Path) -> None:
    from transformers import GptOssForCausalLM
    from vllm import LLM, SamplingParams
    from vllm.inputs import TokensPrompt

    if source == "cast":
        ckpt = run_cast(make_mxfp4_source(tmp_path / "mxfp4"), tmp_path / "nvfp4")
    else:
        ckpt = tmp_path / "nvfp4"
        shutil.copytree(MODELOPT_FIXTURE, ckpt)
    reference = dequantized_bf16(ckpt, tmp_path / "bf16")

    hf = GptOssForCausalLM.from_pretrained(reference, torch_dtype=torch.bfloat16).cuda()
    with torch.no_grad():
        logits = hf(torch.tensor([PROMPT], device="cuda")).logits[0].float()
    want = torch.log_softmax(logits, -1)[torch.arange(len(PROMPT) - 1), PROMPT[1:]].cpu()
    del hf

    llm = LLM(
        model=str(ckpt),
        dtype="bfloat16",
        enforce_eager=True,
        max_model_len=64,
        gpu_memory_utilization=0.3,
        skip_tokenizer_init=True,
    )
    params = SamplingParams(max_tokens=1, prompt_logprobs=0, detokenize=False)
    (result,) = llm.generate([TokensPrompt(prompt_token_ids=PROMPT)], params)
    got = torch.tensor(
        [result.prompt_logprobs[i][t].logprob for i, t in enumerate(PROMPT) if i > 0]
    )
    diff = (got - want).abs().max().item()
    print(f"{source}: max |vLLM - transformers| prompt logprob = {diff:.4f} nats")
    assert torch.isfinite(got).all()
    assert diff < TOLERANCE
