"""NVFP4 gpt-oss checkpoints in ModelOpt's export format load and run in vLLM's gpt-oss model.

fp4stack issue 11; vLLM issue #46641. The format is what ModelOpt 0.47's unified HF export
writes for GptOss (and what ``fp4stack cast --format modelopt`` writes): fused experts
``X`` uint8 (E, in/2, out), ``X_weight_scale`` fp8 (E, in/16, out), ``X_weight_scale_2``
f32 scalar, ``X_bias`` (E, out); ``quant_algo`` W4A16_NVFP4.

Checkpoints (built inside the tests, no Hub):

- ``cast``: a tiny MXFP4 gpt-oss checkpoint (``tests/fp4stack/checkpoint/cast/cast_ckpt.py``)
  converted by ``python -m fp4stack cast mxfp4-to-nvfp4 --format modelopt`` from this
  repository's ``src/`` (the cast needs only numpy, which this venv has);
- ``modelopt``: ``tests/vllm/data/gpt_oss_nvfp4_modelopt/``, written by the patched
  ModelOpt 0.44.0's ``export_hf_checkpoint`` in the ModelOpt test venv
  (``tests/modelopt/make_gpt_oss_nvfp4_fixture.py`` regenerates it, and
  ``tests/modelopt/test_gpt_oss_nvfp4_fixture.py`` checks the committed copy is what the
  export writes today).

Real vLLM code runs on CPU: ``VllmConfig`` on the checkpoint directory (quantization from its
``config.json``), ``initialize_model`` of ``GptOssForCausalLM`` with
``ModelOptNvFp4FusedMoE``, the NVFP4 MoE backend oracle, ``DefaultModelLoader.load_weights``
(safetensors iteration, the gpt-oss name mapper, ``GptOssModel.load_weights``), and the
experts' ``process_weights_after_loading`` down to the Marlin preparation. Only what needs a
GPU is replaced (``on_cpu``):

- ``MarlinExperts._supports_current_device`` (a CUDA capability check) says yes, so the
  oracle picks Marlin, the backend vLLM uses for W4A16_NVFP4 MoE;
- the attention backend selection returns vLLM's CPU attention backend (CUDA-only
  selection; attention is not run);
- ``ops.gptq_marlin_repack`` (CUDA kernel) is replaced by a reshape that keeps the bytes,
  and, on 0.28.0, ``marlin_make_workspace_new`` (per-SM workspace) by a small zero tensor
  (0.33.0 has no workspace);
- the Marlin MoE GEMM (``ops.moe_wna16_marlin_gemm``) is not called: the numerics test
  computes the experts in torch from the processed layer the way the kernel consumes it.
"""

from __future__ import annotations

import importlib.util
import multiprocessing
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
import vllm._custom_ops as ops
from safetensors.torch import load_file
from vllm.config import (
    DeviceConfig,
    LoadConfig,
    ModelConfig,
    ParallelConfig,
    VllmConfig,
    set_current_vllm_config,
)
from vllm.distributed import (
    destroy_distributed_environment,
    destroy_model_parallel,
    init_distributed_environment,
    initialize_model_parallel,
)
from vllm.model_executor.layers.activation import SwigluOAIAndMul
from vllm.model_executor.layers.fused_moe.experts.marlin_moe import MarlinExperts
from vllm.model_executor.layers.fused_moe.routed_experts import RoutedExperts
from vllm.model_executor.layers.quantization.utils import marlin_utils_fp4
from vllm.model_executor.layers.quantization.utils.marlin_utils import get_scale_perms
from vllm.model_executor.model_loader.default_loader import DefaultModelLoader
from vllm.model_executor.model_loader.utils import initialize_model
from vllm.utils.torch_utils import set_default_torch_dtype

REPO = Path(__file__).resolve().parents[2]
MODELOPT_FIXTURE = Path(__file__).parent / "data" / "gpt_oss_nvfp4_modelopt"
EXPERTS = "model.layers.0.mlp.experts"

E2M1 = torch.tensor(
    [0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6], dtype=torch.float32
)

# gpt-oss shapes, tiny. hidden 64 is not a multiple of 128, so Marlin pads the
# intermediate size 64 to 128: the padding path the interleave fix is about.
HIDDEN, INTER, NUM_EXPERTS, TOP_K = 64, 64, 4, 2
GPT_OSS_CONFIG = {
    "architectures": ["GptOssForCausalLM"],
    "model_type": "gpt_oss",
    "hidden_size": HIDDEN,
    "intermediate_size": INTER,
    "num_hidden_layers": 1,
    "num_local_experts": NUM_EXPERTS,
    "num_experts_per_tok": TOP_K,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,
    "vocab_size": 128,
    "max_position_embeddings": 256,
    "sliding_window": 128,
    "layer_types": ["full_attention"],
    "rms_norm_eps": 1e-5,
    "swiglu_limit": 7.0,
    "rope_theta": 150000.0,
    "rope_scaling": {
        "rope_type": "yarn",
        "factor": 32.0,
        "beta_fast": 32.0,
        "beta_slow": 1.0,
        "truncate": False,
        "original_max_position_embeddings": 4096,
    },
    "attention_bias": True,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
}


def _cast_ckpt_module() -> ModuleType:
    path = REPO / "tests/fp4stack/checkpoint/cast/cast_ckpt.py"
    spec = importlib.util.spec_from_file_location("cast_ckpt", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_mxfp4_source(root: Path) -> Path:
    """A tiny gpt-oss MXFP4 checkpoint, as the cast tests build them."""
    cast_ckpt = _cast_ckpt_module()
    tensors = cast_ckpt.gpt_oss_tensors(
        np.random.default_rng(46641), experts=NUM_EXPERTS, hidden=HIDDEN, inter=INTER
    )
    for name in list(tensors):
        if name.endswith("_scales"):  # E8M0 around 2**0, so the experts matter
            tensors[name] = tensors[name] + 4
    # The cast tests' generator has no second norm; a loadable gpt-oss layer does.
    norm = "model.layers.0.post_attention_layernorm.weight"
    tensors[norm] = cast_ckpt.bf16(np.random.default_rng(7), HIDDEN)
    config = dict(GPT_OSS_CONFIG, quantization_config=dict(cast_ckpt.GPT_OSS_QCONFIG))
    return cast_ckpt.write_checkpoint(root, tensors, config)


def run_cast(src: Path, dst: Path) -> Path:
    """``fp4stack cast mxfp4-to-nvfp4 --format modelopt`` from this repository's source."""
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    cmd = [sys.executable, "-m", "fp4stack", "cast", "mxfp4-to-nvfp4", str(src), str(dst)]
    cmd += ["--format", "modelopt", "--workers", "1"]
    subprocess.run(cmd, check=True, env=env, capture_output=True)
    return dst


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("gpt-oss")
    src = make_mxfp4_source(root / "mxfp4")
    return {"mxfp4": src, "cast": run_cast(src, root / "nvfp4-cast"), "modelopt": MODELOPT_FIXTURE}


# --------------------------------------------------------------------------- helpers


def decode_nvfp4(packed: torch.Tensor, scale: torch.Tensor, scale_2: torch.Tensor) -> torch.Tensor:
    """(..., rows, K/2) bytes, low nibble first, (..., rows, K/16) fp8 scales -> float32."""
    codes = torch.stack([packed & 0xF, packed >> 4], dim=-1).reshape(*packed.shape[:-1], -1)
    block = scale.float().repeat_interleave(codes.shape[-1] // scale.shape[-1], dim=-1)
    return E2M1[codes.long()] * block * scale_2.float()


def checkpoint_experts(ckpt: Path) -> dict[str, torch.Tensor]:
    """The checkpoint's dequantized experts in vLLM's (E, out, in) layout, and its biases."""
    t = load_file(str(ckpt / "model.safetensors"))
    out = {}
    for proj, param in (("gate_up_proj", "w13"), ("down_proj", "w2")):
        key = f"{EXPERTS}.{proj}"
        out[param] = decode_nvfp4(
            t[key].transpose(-1, -2),
            t[key + "_weight_scale"].transpose(-1, -2),
            t[key + "_weight_scale_2"],
        )
        out[f"{param}_bias"] = t[key + "_bias"]
    return out


def mxfp4_experts(ckpt: Path) -> dict[str, torch.Tensor]:
    """The MXFP4 source's dequantized experts, (E, out, in)."""
    t = load_file(str(ckpt / "model.safetensors"))
    out = {}
    for proj, param in (("gate_up_proj", "w13"), ("down_proj", "w2")):
        blocks, scales = t[f"{EXPERTS}.{proj}_blocks"], t[f"{EXPERTS}.{proj}_scales"]
        packed = blocks.reshape(*blocks.shape[:-2], -1)
        codes = torch.stack([packed & 0xF, packed >> 4], dim=-1).reshape(*packed.shape[:-1], -1)
        scale = torch.exp2(scales.float() - 127).repeat_interleave(32, dim=-1)
        out[param] = E2M1[codes.long()] * scale
    return out


def loaded_experts(layer: RoutedExperts) -> dict[str, torch.Tensor]:
    """Dequantize the experts as the layer holds them after load_weights."""
    s2_13 = layer.w13_weight_scale_2
    assert torch.equal(s2_13[:, 0], s2_13[:, 1]), "gate and up must share the global scale"
    return {
        "w13": decode_nvfp4(layer.w13_weight, layer.w13_weight_scale, s2_13[:, :1, None]),
        "w2": decode_nvfp4(
            layer.w2_weight, layer.w2_weight_scale, layer.w2_weight_scale_2[:, None, None]
        ),
        "w13_bias": layer.w13_bias.detach().clone(),
        "w2_bias": layer.w2_bias.detach().clone(),
    }


def fake_marlin_repack(
    b_q_weight: torch.Tensor,
    perm: torch.Tensor | None = None,
    size_k: int = 0,
    size_n: int = 0,
    num_bits: int = 4,
    is_a_8bit: bool = False,
) -> torch.Tensor:
    """``ops.gptq_marlin_repack`` is a CUDA kernel: keep the bytes, take its output shape.

    vLLM 0.28.0 passes a ``perm``; 0.33.0 has none.
    """
    return b_q_weight.reshape(size_k // 16, size_n * 16 * num_bits // 32).clone()


def unrepack(weight: torch.Tensor, size_k: int, size_n: int) -> torch.Tensor:
    """Undo ``fake_marlin_repack`` for one expert: (size_n, size_k/2) bytes."""
    return weight.reshape(size_k // 8, size_n).T.contiguous().view(torch.uint8)


def unpermute_bias(bias: torch.Tensor) -> torch.Tensor:
    """Undo ``marlin_permute_bias`` (a layout permutation of 64-element groups)."""
    perm = torch.tensor(get_scale_perms()[1])
    inverse = torch.argsort(perm)
    return bias.reshape(-1, len(perm))[:, inverse].reshape(bias.shape)


class OnCpu:
    """Replace only the GPU-bound pieces (see the module docstring)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from vllm.v1.attention.backends.cpu_attn import CPUAttentionBackend

        monkeypatch.setattr(MarlinExperts, "_supports_current_device", staticmethod(lambda: True))
        import vllm.model_executor.layers.attention.attention as attention_mod

        monkeypatch.setattr(attention_mod, "get_attn_backend", lambda *a, **k: CPUAttentionBackend)
        monkeypatch.setattr(ops, "gptq_marlin_repack", fake_marlin_repack)
        # The per-SM workspace (a CUDA allocation): vLLM 0.28.0 makes one per layer; 0.33.0
        # passes none to the GEMM and no longer has the helper.
        if hasattr(marlin_utils_fp4, "marlin_make_workspace_new"):
            monkeypatch.setattr(
                marlin_utils_fp4,
                "marlin_make_workspace_new",
                lambda device, max_blocks_per_sm=1, existing=None: torch.zeros(1, dtype=torch.int),
            )
        # A spy, not a replacement: record the (padded) block scales handed to
        # Marlin's scale layout, then run vLLM's own function.
        self.scales: list[torch.Tensor] = []
        real = marlin_utils_fp4.marlin_permute_scales

        def spy(s: torch.Tensor, **kwargs: object) -> torch.Tensor:
            self.scales.append(s.detach().clone())
            return real(s=s, **kwargs)

        monkeypatch.setattr(marlin_utils_fp4, "marlin_permute_scales", spy)


@pytest.fixture
def on_cpu(monkeypatch: pytest.MonkeyPatch) -> OnCpu:
    return OnCpu(monkeypatch)


def vllm_config(ckpt: Path, tp: int = 1) -> VllmConfig:
    return VllmConfig(
        model_config=ModelConfig(model=str(ckpt), dtype="bfloat16", skip_tokenizer_init=True),
        device_config=DeviceConfig(device="cpu"),
        parallel_config=ParallelConfig(tensor_parallel_size=tp),
        load_config=LoadConfig(),
    )


def checkpoint_params(model: torch.nn.Module) -> Iterator[tuple[str, torch.nn.Parameter]]:
    """Every parameter the checkpoint must fill.

    Left out: the attention layers' KV-cache scales (``KVCacheScaleParameter``), which keep
    their defaults when the checkpoint has no KV-cache quantization
    (``kv_cache_quant_algo`` null, as in ModelOpt's weight-only export and the cast).
    """
    for name, p in model.named_parameters():
        if type(p).__name__ != "KVCacheScaleParameter":
            yield name, p


def fill_nan(model: torch.nn.Module) -> None:
    """NaN in every float parameter, 0xFF in the packed FP4 bytes."""
    with torch.no_grad():
        for _, p in checkpoint_params(model):
            p.data.fill_(255 if p.dtype == torch.uint8 else float("nan"))


def load(config: VllmConfig) -> tuple[torch.nn.Module, RoutedExperts]:
    """What BaseModelLoader.load_model does, with a NaN fill before the weights load."""
    with set_current_vllm_config(config), set_default_torch_dtype(config.model_config.dtype):
        model = initialize_model(vllm_config=config, model_config=config.model_config)
        fill_nan(model)
        DefaultModelLoader(config.load_config).load_weights(model, config.model_config)
    (experts,) = [m for m in model.modules() if isinstance(m, RoutedExperts)]
    return model, experts


@pytest.fixture(scope="module")
def dist_tp1(
    tmp_path_factory: pytest.TempPathFactory, checkpoints: dict[str, Path]
) -> Iterator[None]:
    store = tmp_path_factory.mktemp("gloo") / "store"
    with set_current_vllm_config(vllm_config(checkpoints["cast"])):
        init_distributed_environment(
            world_size=1, rank=0, distributed_init_method=f"file://{store}", local_rank=0,
            backend="gloo",
        )  # fmt: skip
        initialize_model_parallel(1, 1)
    try:
        yield
    finally:
        # Not cleanup_dist_env_and_memory(): it needs an accelerator.
        destroy_model_parallel()
        destroy_distributed_environment()


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("source", ["cast", "modelopt"])
def test_modelopt_nvfp4_gpt_oss_loads(
    source: str, checkpoints: dict[str, Path], dist_tp1: None, on_cpu: OnCpu
) -> None:
    """Every parameter is filled; the experts dequantize to the checkpoint's values exactly."""
    ckpt = checkpoints[source]
    model, experts = load(vllm_config(ckpt))
    assert type(experts.quant_method).__name__ == "ModelOptNvFp4FusedMoE"

    for name, p in checkpoint_params(model):
        if p.dtype != torch.uint8:
            assert not p.float().isnan().any(), f"{name} left uninitialised"

    got, want = loaded_experts(experts), checkpoint_experts(ckpt)
    for key in ("w13", "w2"):
        assert got[key].shape == want[key].shape, key
        assert torch.equal(got[key], want[key]), key
    for key in ("w13_bias", "w2_bias"):
        assert torch.equal(got[key], want[key].to(got[key].dtype)), key

    if source == "cast":  # the cast is exact for these blocks: equal to the MXFP4 source
        source_values = mxfp4_experts(checkpoints["mxfp4"])
        for key in ("w13", "w2"):
            assert torch.equal(got[key], source_values[key]), key


def reference_moe_per_expert(
    layer: RoutedExperts, scales: list[torch.Tensor], g13, g2, x, halves: bool = False
):
    """Each expert's output, computed from the processed (padded, Marlin-laid-out) layer.

    Weights: the repacked bytes (fake repack keeps them) un-laid-out per expert; block
    scales: the padded scales handed to Marlin's scale layout (recorded); global scales:
    the loaded ones; biases: the quant config's (what the kernel reads), un-permuted. GEMM
    1 runs over all padded w13 rows, SWIGLUOAI pairs them as the kernel's activation does,
    GEMM 2 over all padded w2 inputs.
    """
    num_experts = layer.w13_weight.shape[0]
    quant_config = layer.quant_method.moe_quant_config
    assert quant_config.w1_bias is not None and quant_config.w2_bias is not None
    act = SwigluOAIAndMul()
    outs = []
    for e in range(num_experts):
        s13, s2 = scales[e].T, scales[num_experts + e].T  # (n, k/16)
        n13, k13 = s13.shape[0], s13.shape[1] * 16
        n2, k2 = s2.shape[0], s2.shape[1] * 16
        w13 = decode_nvfp4(unrepack(layer.w13_weight[e], k13, n13), s13, g13[e])
        w2 = decode_nvfp4(unrepack(layer.w2_weight[e], k2, n2), s2, g2[e])
        b13 = unpermute_bias(quant_config.w1_bias[e].float())
        b2 = unpermute_bias(quant_config.w2_bias[e].float())
        h = x @ w13.T + b13
        if halves:  # pair row i with row n + i, as a [gate; up] layout would
            h = torch.stack(h.chunk(2, dim=-1), dim=-1).flatten(-2)
        outs.append(act.forward_native(h) @ w2.T + b2)
    return torch.stack(outs)


def transformers_per_expert(ckpt_values: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """transformers' GptOssExperts on the checkpoint's dequantized weights, one expert at a time."""
    from transformers import GptOssConfig
    from transformers.models.gpt_oss.modeling_gpt_oss import GptOssExperts

    config = GptOssConfig(**{k: v for k, v in GPT_OSS_CONFIG.items() if k != "architectures"})
    experts = GptOssExperts(config).float()
    with torch.no_grad():
        # transformers keeps the BMM layout (E, in, out)
        experts.gate_up_proj.copy_(ckpt_values["w13"].transpose(-1, -2))
        experts.gate_up_proj_bias.copy_(ckpt_values["w13_bias"].float())
        experts.down_proj.copy_(ckpt_values["w2"].transpose(-1, -2))
        experts.down_proj_bias.copy_(ckpt_values["w2_bias"].float())
        outs = []
        for e in range(NUM_EXPERTS):
            idx = torch.full((x.shape[0], 1), e, dtype=torch.long)
            weight = torch.ones(x.shape[0], 1)
            outs.append(experts(x, idx, weight))  # (tokens, top_k) indices and weights
    return torch.stack(outs)


def test_modelopt_nvfp4_gpt_oss_marlin_forward_matches_transformers(
    checkpoints: dict[str, Path], dist_tp1: None, on_cpu: OnCpu
) -> None:
    """The processed Marlin layer computes what transformers' GptOss experts compute."""
    ckpt = checkpoints["cast"]
    config = vllm_config(ckpt)
    _, layer = load(config)
    g13 = layer.w13_weight_scale_2[:, 0].detach().clone()
    g2 = layer.w2_weight_scale_2.detach().clone()
    with set_current_vllm_config(config):
        layer.quant_method.process_weights_after_loading(layer)
        assert type(layer.quant_method.moe_kernel.fused_experts) is MarlinExperts
        x = torch.randn(16, HIDDEN, generator=torch.Generator().manual_seed(11))
        got = reference_moe_per_expert(layer, on_cpu.scales, g13, g2, x)
    want = transformers_per_expert(checkpoint_experts(ckpt), x)

    diff = (got - want).abs().max().item()
    scale = want.abs().max().item()
    print(f"max |vLLM Marlin layout - transformers| = {diff:.3g} (max |out| {scale:.3g})")
    assert diff <= 1e-5 * scale
    # The comparison sees the interleave: the same layer read as [gate; up] halves
    # (the layout Marlin's padding assumed before the fix) is far off.
    with set_current_vllm_config(config):
        halves = reference_moe_per_expert(layer, on_cpu.scales, g13, g2, x, halves=True)
    assert (halves - want).abs().max().item() > 0.1 * scale


# --------------------------------------------------------------------------- TP=2


def _tp_worker(rank: int, ckpt: str, store: str, out: str) -> None:
    """One rank of a two-process gloo group: load, then save this rank's expert shard."""
    os.environ.setdefault("VLLM_HOST_IP", "127.0.0.1")
    mp = pytest.MonkeyPatch()
    OnCpu(mp)
    config = vllm_config(Path(ckpt), tp=2)
    with set_current_vllm_config(config):
        init_distributed_environment(
            world_size=2, rank=rank, distributed_init_method=f"file://{store}",
            local_rank=rank, backend="gloo",
        )  # fmt: skip
        initialize_model_parallel(2, 1)
        try:
            _, experts = load(config)
            torch.save(
                {k: v.detach().clone() for k, v in experts.named_parameters()},
                f"{out}/rank{rank}.pt",
            )
        finally:
            destroy_model_parallel()
            destroy_distributed_environment()
            mp.undo()


def test_modelopt_nvfp4_gpt_oss_tp2_shards(checkpoints: dict[str, Path], tmp_path: Path) -> None:
    """With TP=2 (gloo, two CPU processes) each rank holds its slice of the TP=1 experts."""
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(
            target=_tp_worker,
            args=(rank, str(checkpoints["cast"]), str(tmp_path / "store"), str(tmp_path)),
        )
        for rank in range(2)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=600)
    assert [p.exitcode for p in procs] == [0, 0]

    full = checkpoint_experts(checkpoints["cast"])
    shard = INTER // 2
    for rank in range(2):
        got = torch.load(tmp_path / f"rank{rank}.pt")
        for name, p in got.items():
            if p.dtype != torch.uint8:
                assert not p.float().isnan().any(), f"rank {rank}: {name} left uninitialised"

        class Holder:  # loaded_experts reads attributes
            pass

        holder = Holder()
        for name, p in got.items():
            setattr(holder, name, p)
        values = loaded_experts(holder)  # type: ignore[arg-type]
        rows = slice(2 * shard * rank, 2 * shard * (rank + 1))  # interleaved gate/up pairs
        cols = slice(shard * rank, shard * (rank + 1))
        assert torch.equal(values["w13"], full["w13"][:, rows]), rank
        assert torch.equal(values["w2"], full["w2"][:, :, cols]), rank
        assert torch.equal(
            values["w13_bias"], full["w13_bias"][:, rows].to(values["w13_bias"].dtype)
        )
        want_b2 = full["w2_bias"] if rank == 0 else torch.zeros_like(full["w2_bias"])
        assert torch.equal(values["w2_bias"], want_b2.to(values["w2_bias"].dtype)), rank
