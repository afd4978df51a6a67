"""Whole checkpoints through ``fp4stack cast mxfp4-to-nvfp4``, decoded by the consumers."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from compressed_tensors.quantization import QuantizationConfig
from modelopt.torch.export.convert_hf_config import convert_hf_quant_config_format
from modelopt.torch.quantization.qtensor.nvfp4_tensor import NVFP4QTensor
from safetensors import safe_open

from .cast_ckpt import ct_mxfp4_config, gpt_oss_config, gpt_oss_tensors, write_checkpoint
from .cast_decoders import (
    ct_mxfp4,
    ct_nvfp4,
    modelopt_experts,
    modelopt_nvfp4,
    transformers_gpt_oss,
)

E, H, INTER = 4, 64, 96  # experts, hidden, intermediate: gate_up (E, 192, 64), down (E, 64, 96)
EXPERT_PARAMS = ("gate_up_proj", "down_proj")


def load_dir(root: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Every tensor of a checkpoint dir, and the file each came from (safetensors library)."""
    tensors, where = {}, {}
    for f in sorted(root.glob("*.safetensors")):
        with safe_open(str(f), "pt") as g:
            for k in g.keys():  # noqa: SIM118 - safe_open has no __iter__
                tensors[k], where[k] = g.get_tensor(k), f.name
    return tensors, where


def source_experts(src: dict[str, torch.Tensor], param: str) -> torch.Tensor:
    """MXFP4 experts decoded by transformers, cross-checked with compressed-tensors."""
    blocks, scales = src[f"{param}_blocks"], src[f"{param}_scales"]
    by_tf = transformers_gpt_oss(blocks, scales)
    e, rows, g, _ = blocks.shape
    by_ct = ct_mxfp4(blocks.reshape(e * rows, g * 16), scales.reshape(e * rows, g))
    assert torch.equal(by_tf, by_ct.reshape(by_tf.shape))
    return by_tf


def ct_experts(out: dict[str, torch.Tensor], prefix: str, param: str) -> torch.Tensor:
    """Per-expert compressed-tensors Linear modules decoded and re-fused to (E, rows, in)."""

    def dec(mod: str) -> torch.Tensor:
        return ct_nvfp4(out[f"{mod}.weight_packed"], out[f"{mod}.weight_scale"],
                        out[f"{mod}.weight_global_scale"])  # fmt: skip

    experts = []
    for e in range(E):
        if param == "gate_up_proj":
            gate, up = dec(f"{prefix}.{e}.gate_proj"), dec(f"{prefix}.{e}.up_proj")
            fused = torch.empty(2 * gate.shape[0], gate.shape[1])
            fused[0::2], fused[1::2] = gate, up
            experts.append(fused)
        else:
            experts.append(dec(f"{prefix}.{e}.{param}"))
    return torch.stack(experts)


def plain_requantize_mse(x: torch.Tensor) -> float:
    q, s, s2 = NVFP4QTensor.quantize(x, 16)
    y = q.dequantize(dtype=torch.float32, scale=s, double_scale=s2, block_sizes={-1: 16})
    return float(((y.double() - x.double()) ** 2).mean())


@pytest.fixture(scope="module")
def gpt_oss_src(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """Sharded gpt-oss checkpoints: spread 8 (all in range) and 40 (many OOR blocks)."""
    out = {}
    for spread in (8, 40):
        rng = np.random.default_rng(spread)
        tensors = gpt_oss_tensors(rng, layers=2, experts=E, hidden=H, inter=INTER, spread=spread)
        root = tmp_path_factory.mktemp(f"gptoss{spread}") / "src"
        out[spread] = write_checkpoint(root, tensors, gpt_oss_config(2, E, H, INTER), shards=3)
    return out


@pytest.mark.parametrize("spread", [8, 40])
@pytest.mark.parametrize("fmt", ["modelopt", "compressed-tensors"])
def test_gpt_oss(gpt_oss_src, tmp_path, run_cli, fmt, spread):
    src_dir, dst = gpt_oss_src[spread], tmp_path / "dst"
    before = {p.name: p.read_bytes() for p in src_dir.iterdir()}
    code, report, err = run_cli(src_dir, dst, "--format", fmt, "--workers", "2")
    assert code == 0, err
    assert {p.name: p.read_bytes() for p in src_dir.iterdir()} == before  # patches stay private
    src, _ = load_dir(src_dir)
    out, where = load_dir(dst)
    for layer in range(2):
        prefix = f"model.layers.{layer}.mlp.experts"
        for param in EXPERT_PARAMS:
            ref = source_experts(src, f"{prefix}.{param}")
            if fmt == "modelopt":
                packed = out[f"{prefix}.{param}"]
                assert packed.dtype == torch.uint8
                assert packed.shape == (E, ref.shape[2] // 2, ref.shape[1])  # (E, in/2, out)
                assert out[f"{prefix}.{param}_weight_scale"].dtype == torch.float8_e4m3fn
                assert out[f"{prefix}.{param}_weight_scale_2"].shape == ()
                got = modelopt_experts(packed, out[f"{prefix}.{param}_weight_scale"],
                                       out[f"{prefix}.{param}_weight_scale_2"])  # fmt: skip
            else:
                got = ct_experts(out, prefix, param)
            assert torch.isfinite(got).all()
            if spread <= 17:
                assert torch.equal(got, ref)
            else:
                mse = float(((got.double() - ref.double()) ** 2).mean())
                assert mse <= plain_requantize_mse(ref) * (1 + 1e-12)
            assert f"{prefix}.{param}" in report
    _check_untouched(src_dir, dst, src, out, fmt)
    _check_index(src_dir, dst, out, where)
    _check_configs(dst, fmt)


def _check_untouched(src_dir, dst, src, out, fmt) -> None:
    """Non-quantized tensors byte-identical (biases split per expert for compressed-tensors),
    other files copied."""
    for name, t in src.items():
        if name.endswith(("_blocks", "_scales")):
            continue
        if fmt == "compressed-tensors" and name.endswith("_proj_bias"):
            prefix, _, param = name.rpartition(".")
            for e in range(E):
                if param == "gate_up_proj_bias":
                    assert torch.equal(out[f"{prefix}.{e}.gate_proj.bias"], t[e, 0::2])
                    assert torch.equal(out[f"{prefix}.{e}.up_proj.bias"], t[e, 1::2])
                else:
                    assert torch.equal(out[f"{prefix}.{e}.down_proj.bias"], t[e])
            continue
        assert out[name].dtype == t.dtype
        assert torch.equal(out[name].view(torch.uint8), t.view(torch.uint8)), name
    for f in ("tokenizer.json", "generation_config.json"):
        assert (dst / f).read_bytes() == (src_dir / f).read_bytes()


def _check_index(src_dir, dst, out, where) -> None:
    index = json.loads((dst / "model.safetensors.index.json").read_text())
    assert index["weight_map"] == where
    assert index["metadata"]["total_size"] == sum(
        t.numel() * t.element_size() for t in out.values()
    )
    assert sorted(p.name for p in dst.glob("*.safetensors")) == sorted(
        p.name for p in src_dir.glob("*.safetensors")
    )
    assert not list(dst.parent.glob(".*fp4stack*"))


def _check_configs(dst, fmt) -> None:
    config = json.loads((dst / "config.json").read_text())
    assert config["model_type"] == "gpt_oss" and config["num_local_experts"] == E
    qc = config["quantization_config"]
    expected_excluded = sorted(
        ["lm_head", "model.embed_tokens"]
        + [
            f"model.layers.{i}.{m}"
            for i in range(2)
            for m in ("mlp.router", *(f"self_attn.{p}_proj" for p in "kovq"))
        ]
    )
    if fmt == "modelopt":
        hf = json.loads((dst / "hf_quant_config.json").read_text())
        assert hf["producer"] == {"name": "modelopt", "version": "0.47.0"}
        assert hf["quantization"]["quant_algo"] == "W4A16_NVFP4"
        assert hf["quantization"]["exclude_modules"] == expected_excluded
        assert qc == convert_hf_quant_config_format(hf)  # ModelOpt's own conversion
    else:
        assert not (dst / "hf_quant_config.json").exists()
        parsed = QuantizationConfig.model_validate(qc)
        assert parsed.format == "nvfp4-pack-quantized"
        weights = parsed.config_groups["group_0"].weights
        assert (weights.num_bits, weights.group_size, weights.strategy) == (4, 16, "tensor_group")
        assert parsed.ignore == expected_excluded


@pytest.mark.parametrize("scale_dtype", [torch.uint8, torch.float8_e8m0fnu])
@pytest.mark.parametrize("fmt", ["modelopt", "compressed-tensors"])
def test_compressed_tensors_source(tmp_path, run_cli, fmt, scale_dtype):
    """compressed-tensors mxfp4-pack-quantized in, one file, no index; E8M0 scales stored as
    uint8 or as torch's float8_e8m0fnu."""
    rng = np.random.default_rng(11)
    shapes = {
        "model.layers.0.mlp.down_proj": (64, 128),
        "model.layers.0.self_attn.q_proj": (96, 64),
    }
    tensors = {"lm_head.weight": torch.randn(32, 64).to(torch.bfloat16)}
    spreads = {"model.layers.0.mlp.down_proj": 12, "model.layers.0.self_attn.q_proj": 30}
    for mod, (o, n) in shapes.items():
        tensors[f"{mod}.weight_packed"] = torch.from_numpy(
            rng.integers(0, 256, (o, n // 2), dtype=np.uint8)
        )
        lo = 125 - spreads[mod]
        tensors[f"{mod}.weight_scale"] = torch.from_numpy(
            rng.integers(lo, 126, (o, n // 32)).astype(np.uint8)
        ).view(scale_dtype)
    src_dir = write_checkpoint(tmp_path / "src", tensors, ct_mxfp4_config(["lm_head"]))
    code, _, err = run_cli(src_dir, tmp_path / "dst", "--format", fmt, "--workers", "1")
    assert code == 0, err
    out, _ = load_dir(tmp_path / "dst")
    for mod in shapes:
        ref = ct_mxfp4(
            tensors[f"{mod}.weight_packed"], tensors[f"{mod}.weight_scale"].view(torch.uint8)
        )
        if fmt == "modelopt":
            got = modelopt_nvfp4(
                out[f"{mod}.weight"], out[f"{mod}.weight_scale"], out[f"{mod}.weight_scale_2"]
            )
        else:
            got = ct_nvfp4(
                out[f"{mod}.weight_packed"],
                out[f"{mod}.weight_scale"],
                out[f"{mod}.weight_global_scale"],
            )
        if spreads[mod] <= 17:
            assert torch.equal(got, ref)
            name = f"{mod}.weight" if fmt == "modelopt" else f"{mod}.weight_packed"
            assert torch.equal(out[name], tensors[f"{mod}.weight_packed"])
        else:
            assert float(((got - ref).double() ** 2).mean()) <= plain_requantize_mse(ref) * (
                1 + 1e-12
            )
    assert torch.equal(out["lm_head.weight"], tensors["lm_head.weight"])
    qc = json.loads((tmp_path / "dst" / "config.json").read_text())["quantization_config"]
    assert "lm_head" in qc["ignore"]
    assert not (tmp_path / "dst" / "model.safetensors.index.json").exists()


def test_without_linux_only_calls_output_is_identical(gpt_oss_src, tmp_path, run_cli, monkeypatch):
    """Where os has no preadv, copy_file_range or posix_fallocate (macOS), the user-space
    fallbacks write the very same bytes."""
    src_dir = gpt_oss_src[40]
    assert run_cli(src_dir, tmp_path / "linux", "--workers", "1")[0] == 0
    for name in ("preadv", "copy_file_range", "posix_fallocate"):
        monkeypatch.delattr(os, name, raising=False)
    assert run_cli(src_dir, tmp_path / "portable", "--workers", "1")[0] == 0
    names = sorted(p.name for p in (tmp_path / "linux").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "portable").iterdir())
    for name in names:
        assert (tmp_path / "linux" / name).read_bytes() == (
            tmp_path / "portable" / name
        ).read_bytes()


@pytest.mark.parametrize("ignore", ["null", "absent"])
def test_compressed_tensors_source_without_ignore_list(tmp_path, run_cli, ignore):
    """compressed-tensors' QuantizationConfig allows ``ignore: null`` or no ``ignore`` at all;
    the compressed-tensors output then ignores just the unquantized Linear modules."""
    rng = np.random.default_rng(5)
    tensors = {
        "lm_head.weight": torch.randn(32, 64).to(torch.bfloat16),
        "model.layers.0.mlp.down_proj.weight_packed": torch.from_numpy(
            rng.integers(0, 256, (64, 32), dtype=np.uint8)
        ),
        "model.layers.0.mlp.down_proj.weight_scale": torch.from_numpy(
            rng.integers(110, 126, (64, 2)).astype(np.uint8)
        ),
    }
    config = ct_mxfp4_config([])
    if ignore == "null":
        config["quantization_config"]["ignore"] = None
    else:
        del config["quantization_config"]["ignore"]
    src_dir = write_checkpoint(tmp_path / "src", tensors, config)
    code, _, err = run_cli(src_dir, tmp_path / "dst", "--format", "compressed-tensors")
    assert code == 0, err
    qc = json.loads((tmp_path / "dst" / "config.json").read_text())["quantization_config"]
    assert QuantizationConfig.model_validate(qc).ignore == ["lm_head"]


@pytest.mark.parametrize("fmt", ["modelopt", "compressed-tensors"])
def test_expert_tensor_with_zero_rows(tmp_path, run_cli, fmt):
    """A degenerate fused expert tensor with no rows is still valid safetensors: it is cast
    to empty tensors (per expert for compressed-tensors), not a reshape traceback."""
    rng = np.random.default_rng(3)
    tensors = gpt_oss_tensors(rng, experts=2)
    p = "model.layers.0.mlp.experts.gate_up_proj"
    tensors[f"{p}_blocks"] = torch.zeros(2, 0, 2, 16, dtype=torch.uint8)
    tensors[f"{p}_scales"] = torch.zeros(2, 0, 2, dtype=torch.uint8)
    tensors[f"{p}_bias"] = torch.zeros(2, 0, dtype=torch.bfloat16)
    src_dir = write_checkpoint(tmp_path / "src", tensors, gpt_oss_config(experts=2))
    code, _, err = run_cli(src_dir, tmp_path / "dst", "--format", fmt)
    assert code == 0, err
    out, _ = load_dir(tmp_path / "dst")
    if fmt == "modelopt":
        assert out[p].shape == (2, 32, 0) and out[f"{p}_weight_scale"].shape == (2, 4, 0)
    else:
        prefix = "model.layers.0.mlp.experts.1"
        assert out[f"{prefix}.up_proj.weight_packed"].shape == (0, 32)
        assert out[f"{prefix}.gate_proj.weight_scale"].shape == (0, 4)
        assert out[f"{prefix}.up_proj.bias"].shape == (0,)
