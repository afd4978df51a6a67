"""compressed-tensors 0.13.0's bias-125 MXFP4 scales: detected, corrected exactly, or refused.

A bias-125 checkpoint stores ``e + 125`` where a standard one stores ``e + 127``. So the
same packed nibbles with scales 2 lower, labelled with a bias-125 producer version, must
cast to the very bytes the standard checkpoint casts to.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

from fp4stack.checkpoint import mxfp4_bias
from fp4stack.checkpoint.mxfp4_bias import (
    detect_scale_bias,
    parse_version,
    resolve_scale_bias,
    to_standard,
)
from fp4stack.core.errors import UsageError

from .cast_ckpt import ct_mxfp4_config, gpt_oss_config, write_checkpoint
from .cast_decoders import ct_mxfp4, ct_nvfp4

MODULES = {"model.layers.0.mlp.down_proj": (64, 128), "model.layers.0.self_attn.q_proj": (32, 64)}
RECIPE = "default_stage:\n  default_modifiers:\n    QuantizationModifier: {scheme: MXFP4A16}\n"


def ct_config(version: str | None) -> dict:
    return ct_mxfp4_config(["lm_head"], version=version)


def standard_tensors(seed: int = 5) -> dict[str, torch.Tensor]:
    """Standard E8M0 scales in 112..129 (a spread of 17: every block exact), random nibbles,
    an unquantized lm_head."""
    rng = np.random.default_rng(seed)
    tensors = {"lm_head.weight": torch.randn(16, 64).to(torch.bfloat16)}
    for mod, (o, n) in MODULES.items():
        tensors[f"{mod}.weight_packed"] = torch.from_numpy(
            rng.integers(0, 256, (o, n // 2), dtype=np.uint8)
        )
        tensors[f"{mod}.weight_scale"] = torch.from_numpy(
            rng.integers(112, 130, (o, n // 32)).astype(np.uint8)
        )
    return tensors


def as_bias_125(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """What compressed-tensors 0.13.0 writes for the same weights: every scale byte - 2."""
    return {k: (v - 2) if k.endswith(".weight_scale") else v.clone() for k, v in tensors.items()}


def load_dir(root: Path) -> dict[str, torch.Tensor]:
    out = {}
    for f in sorted(root.glob("*.safetensors")):
        with safe_open(str(f), "pt") as g:
            for k in g.keys():  # noqa: SIM118 - safe_open has no __iter__
                out[k] = g.get_tensor(k)
    return out


def assert_same_tensors(a: Path, b: Path) -> None:
    """Same names, dtypes and bytes (float8 scales compared as bytes)."""
    ta, tb = load_dir(a), load_dir(b)
    assert ta.keys() == tb.keys()
    for k in ta:
        assert ta[k].dtype == tb[k].dtype, k
        assert torch.equal(ta[k].flatten().view(torch.uint8), tb[k].flatten().view(torch.uint8)), k


@pytest.mark.parametrize(
    ("version", "bias"),
    [
        ("0.13.0", 125),
        ("0.12.3.a20251212", 125),  # the first nightly with an MXFP4 compressor
        ("0.13.1.a20260108", 125),  # the last nightly before the fix
        ("0.13.1a20260108", 125),  # normalized spelling
        ("0.13.1.a20260109", 127),  # the first fixed nightly
        ("0.14.0", 127),
        ("0.14.0.1", 127),
        ("0.20.1", 127),
        ("0.13.0+fp4stack.826e393253", 127),  # our patched 0.13.0
        ("0.13.0+fp4stack", 127),
        ("0.13.0+local", 125),  # someone else's build of 0.13.0
        ("0.12.2", None),  # no MXFP4 compressor: the label cannot be right
        ("0.12.3.a20251203", None),
        ("not a version", None),
        (None, None),
    ],
)
def test_bias_from_the_recorded_version(version, bias):
    detected, why = detect_scale_bias(ct_config(version))
    assert detected == bias, why
    assert why


def test_gpt_oss_is_standard():
    assert detect_scale_bias(gpt_oss_config())[0] == 127


def test_version_order():
    order = [
        "0.12.2", "0.12.3.a20251212", "0.12.3", "0.13.0", "0.13.1.a20260108",
        "0.13.1a20260109", "0.13.1", "0.14.0", "0.14.0.1", "0.14.1.dev3", "0.14.1",
    ]  # fmt: skip
    parsed = [parse_version(v) for v in order]
    assert all(p is not None for p in parsed)
    keys = [p.key for p in parsed if p is not None]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)


def test_auto_refuses_a_source_without_a_version():
    with pytest.raises(UsageError, match="cannot tell the E8M0 bias") as info:
        resolve_scale_bias(ct_config(None), "auto", "SRC/config.json")
    assert "--mxfp4-scale-bias" in (info.value.hint or "")
    assert resolve_scale_bias(ct_config(None), "125", "c").shift == 2
    stated = resolve_scale_bias(ct_config("0.14.0"), "125", "c")
    assert stated.shift == 2 and "config.json implies 127" in stated.reason


def test_to_standard_moves_exponents_and_zero_blocks_that_would_leave_the_range():
    packed = np.full((3, 32), 0x11, dtype=np.uint8)  # rows of 2 non-zero blocks
    packed[1, 16:] = 0x88  # -0 and -0: an all-zero block
    e8m0 = np.array([[0, 100], [125, 254], [252, 3]], dtype=np.uint8)
    out = to_standard(e8m0, packed, 2, "t")
    # 254 on an all-zero block is 0.13.0's wrapped 2**-127: the fixed encoding writes 0
    assert out.tolist() == [[2, 102], [127, 0], [254, 5]]
    assert to_standard(e8m0, packed, 0, "t") is e8m0


def test_to_standard_refuses_a_nonzero_block_leaving_the_range():
    packed = np.full((2, 32), 0x22, dtype=np.uint8)
    e8m0 = np.array([[120, 121], [253, 4]], dtype=np.uint8)
    with pytest.raises(UsageError, match=r"SRC: tensor 'x.weight_scale': E8M0 scale 253 at "
                       r"index \(1, 0\) of a non-zero block"):  # fmt: skip
        to_standard(e8m0, packed, 2, "SRC: tensor 'x.weight_scale'")


@pytest.mark.parametrize("fmt", ["compressed-tensors", "modelopt"])
def test_bias_125_source_casts_to_the_standard_sources_bytes(tmp_path, run_cli, fmt):
    """0.13.0's bytes (scales - 2, version 0.13.0) give exactly the output of the same
    weights in standard E8M0, and the report says the scales were corrected."""
    standard = standard_tensors()
    good = write_checkpoint(tmp_path / "std", standard, ct_config("0.14.0"))
    bad = write_checkpoint(tmp_path / "b125", as_bias_125(standard), ct_config("0.13.0"))
    code, out_std, err = run_cli(good, tmp_path / "o_std", "--format", fmt)
    assert code == 0, err
    assert "E8M0 scale bias 127" in out_std and "used as stored" in out_std
    code, out, err = run_cli(bad, tmp_path / "o_125", "--format", fmt)
    assert code == 0, err
    assert "E8M0 scale bias 125 (compressed-tensors 0.13.0 wrote MXFP4 scales with bias 125" in out
    assert "corrected by +2" in out
    assert_same_tensors(tmp_path / "o_std", tmp_path / "o_125")
    if fmt == "compressed-tensors":  # and decoded, it is the producer's standard MXFP4 weight
        got = load_dir(tmp_path / "o_125")
        for mod in MODULES:
            ref = ct_mxfp4(standard[f"{mod}.weight_packed"], standard[f"{mod}.weight_scale"])
            nv = ct_nvfp4(got[f"{mod}.weight_packed"], got[f"{mod}.weight_scale"],
                          got[f"{mod}.weight_global_scale"])  # fmt: skip
            assert torch.equal(nv, ref), mod


def test_flag_states_the_bias_of_a_source_without_a_version(tmp_path, run_cli):
    standard = standard_tensors()
    good = write_checkpoint(tmp_path / "std", standard, ct_config("0.14.0"))
    bare = write_checkpoint(tmp_path / "bare", as_bias_125(standard), ct_config(None))
    code, out, err = run_cli(bare, tmp_path / "o", "--format", "compressed-tensors")
    assert code == 2 and out == ""
    assert "config.json: cannot tell the E8M0 bias" in err and "--mxfp4-scale-bias" in err
    assert not (tmp_path / "o").exists()
    code, out, err = run_cli(bare, tmp_path / "o", "--format", "compressed-tensors",
                             "--mxfp4-scale-bias", "125")  # fmt: skip
    assert code == 0, err
    assert "stated with --mxfp4-scale-bias" in out and "corrected by +2" in out
    run_cli(good, tmp_path / "o_std", "--format", "compressed-tensors")
    assert_same_tensors(tmp_path / "o_std", tmp_path / "o")
    # 127 stated on the standard bytes: used as stored
    code, out, err = run_cli(write_checkpoint(tmp_path / "bare127", standard, ct_config(None)),
                             tmp_path / "o127", "--format", "compressed-tensors",
                             "--mxfp4-scale-bias", "127")  # fmt: skip
    assert code == 0, err
    assert_same_tensors(tmp_path / "o_std", tmp_path / "o127")


def test_refuses_with_the_tensor_named_when_a_corrected_exponent_leaves_e8m0(tmp_path, run_cli):
    tensors = as_bias_125(standard_tensors())
    mod = "model.layers.0.self_attn.q_proj"
    scales = tensors[f"{mod}.weight_scale"]
    scales[3, 1] = 253  # +2 would be 255, NaN
    tensors[f"{mod}.weight_packed"][3, 16:32] = 0x11  # that block is not all zero
    src = write_checkpoint(tmp_path / "src", tensors, ct_config("0.13.0"))
    code, _, err = run_cli(src, tmp_path / "o", "--format", "compressed-tensors")
    assert code == 2, err
    assert f"tensor '{mod}.weight_scale': E8M0 scale 253 at index (3, 1)" in err
    assert not (tmp_path / "o").exists()
    assert not list(tmp_path.glob(".o.*"))


def test_zero_block_wrapped_scale_is_not_refused(tmp_path, run_cli):
    """0.13.0 stores an all-zero group's scale 2**-127 as 254 (wrapped): no refusal."""
    standard = standard_tensors()
    mod = "model.layers.0.mlp.down_proj"
    standard[f"{mod}.weight_packed"][0, :16] = 0
    standard[f"{mod}.weight_scale"][0, 0] = 0  # what the fixed encoding writes
    bad = as_bias_125(standard)
    bad[f"{mod}.weight_scale"][0, 0] = 254
    good = write_checkpoint(tmp_path / "std", standard, ct_config("0.14.0"))
    src = write_checkpoint(tmp_path / "b125", bad, ct_config("0.13.0"))
    assert run_cli(good, tmp_path / "o_std", "--format", "compressed-tensors")[0] == 0
    code, _, err = run_cli(src, tmp_path / "o", "--format", "compressed-tensors")
    assert code == 0, err
    assert_same_tensors(tmp_path / "o_std", tmp_path / "o")


@pytest.mark.parametrize("fmt", ["compressed-tensors", "modelopt"])
def test_recipe_of_the_source_quantization_is_not_copied(tmp_path, run_cli, fmt):
    src = write_checkpoint(tmp_path / "src", standard_tensors(), ct_config("0.13.0"))
    (src / "recipe.yaml").write_text(RECIPE)
    code, out, err = run_cli(src, tmp_path / "o", "--format", fmt)
    assert code == 0, err
    assert not (tmp_path / "o" / "recipe.yaml").exists()
    assert "not copied: recipe.yaml (llm-compressor's recipe" in out
    for kept in ("tokenizer.json", "generation_config.json"):
        assert (tmp_path / "o" / kept).read_bytes() == (src / kept).read_bytes()
    text = (tmp_path / "o" / "config.json").read_text()
    assert "MXFP4" not in text.upper().replace("NVFP4", "")
    assert "version" not in json.loads(text)["quantization_config"]


def test_module_is_importable_without_the_cast():
    """doctor/fix will call it: it lives beside cast/, not in it."""
    assert mxfp4_bias.__name__ == "fp4stack.checkpoint.mxfp4_bias"
