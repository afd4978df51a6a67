"""``fp4stack fix``: exact repairs only, listed before writing, unchanged bytes kept, nothing
left behind on refusal, error or interrupt; the bf16 scale cast is refused with why."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from fp4stack.checkpoint import fix as fix_module
from fp4stack.checkpoint.doctor.diagnose import diagnose
from fp4stack.checkpoint.fp4 import E4M3_VALUES
from fp4stack.checkpoint.reader import INDEX_NAME, open_checkpoint

from .doctor import doctor_ckpt as dc

NV = "model.layers.0.mlp.gate_proj"


def _digests(root: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.iterdir())}


def _tensor_bytes(root: Path) -> dict[str, tuple[str, list[int], bytes]]:
    ckpt = open_checkpoint(root)
    try:
        return {
            n: (ckpt.info(n).dtype, list(ckpt.info(n).shape), ckpt.raw(n).tobytes())
            for n in ckpt.where
        }
    finally:
        ckpt.close()


def _leftovers(parent: Path) -> list[str]:
    return [p.name for p in parent.iterdir() if "fp4stack-tmp" in p.name]


def test_fix_renames_block_fp8_scales_exactly(tmp_path, run_cli):
    ckpt = dc.ct_fp8_block()
    dc.rename_all("weight_scale", "weight_scale_inv")(ckpt)
    src = dc.write(tmp_path / "src", ckpt, shards=2)
    before = _digests(src)
    code, out, err = run_cli("fix", src, tmp_path / "dst")
    assert code == 0, err
    assert out.index("rename") < out.index("wrote"), "repairs are listed before writing"
    assert out.count("rename ") == 8
    assert _digests(src) == before, "SRC is never written"
    old, new = _tensor_bytes(src), _tensor_bytes(tmp_path / "dst")
    for name, value in old.items():
        assert new[name.replace("weight_scale_inv", "weight_scale")] == value
    assert diagnose(tmp_path / "dst").findings == []
    index = json.loads((tmp_path / "dst" / INDEX_NAME).read_text())
    assert all(not n.endswith("_inv") for n in index["weight_map"])
    assert (tmp_path / "dst" / "tokenizer.json").read_bytes() == (
        src / "tokenizer.json"
    ).read_bytes()


def test_fix_restores_nvfp4_fix_bf16_scales_to_fp8(tmp_path, run_cli):
    clean = dc.ct_nvfp4()
    damaged = clean.copy()
    dc.widen_scales()(damaged)
    src = dc.write(tmp_path / "src", damaged)
    dc.write(tmp_path / "clean", clean)
    code, out, err = run_cli("fix", src, tmp_path / "dst")
    assert code == 0, err
    assert "BF16 -> F8_E4M3" in out
    assert _tensor_bytes(tmp_path / "dst") == _tensor_bytes(tmp_path / "clean")


def test_fix_refuses_inexact_bf16_scales_with_the_numbers(tmp_path, run_cli):
    ckpt = dc.ct_nvfp4()
    dc.widen_scales(exact=False)(ckpt)
    src = dc.write(tmp_path / "src", ckpt)
    code, _out, err = run_cli("fix", src, tmp_path / "dst")
    assert code == 2
    assert "refusing" in err and "not exact E4M3" in err and "1.0078125" in err
    assert not (tmp_path / "dst").exists() and not _leftovers(tmp_path)


def test_fix_refuses_the_bf16_scale_cast_and_says_why(tmp_path, run_cli):
    src = dc.write(tmp_path / "src", dc.ct_nvfp4())
    code, _out, err = run_cli("fix", "--nvfp4-scales-to-bf16", src, tmp_path / "dst")
    assert code == 2
    assert err.startswith("ERROR: refused: casting NVFP4 block scales")
    assert "fp4stack install compressed-tensors" in err
    assert not (tmp_path / "dst").exists()


def test_fix_shifts_bias_125_mxfp4_scales_to_standard(tmp_path, run_cli):
    ckpt = dc.ct_mxfp4(version="0.13.0")
    src = dc.write(tmp_path / "src", ckpt)
    code, out, err = run_cli("fix", src, tmp_path / "dst")
    assert code == 0, err
    assert "E8M0 bias 125 -> 127" in out
    old, new = _tensor_bytes(src), _tensor_bytes(tmp_path / "dst")
    for name, (dtype, shape, data) in old.items():
        if name.endswith(".weight_scale"):
            shifted = (np.frombuffer(data, np.uint8) + 2).tobytes()
            assert new[name] == (dtype, shape, shifted), name
        else:
            assert new[name] == (dtype, shape, data), name
    config = json.loads((tmp_path / "dst" / "config.json").read_text())
    assert config["quantization_config"]["version"].startswith("0.13.0+fp4stack.")
    assert diagnose(tmp_path / "dst").findings == [], "read as standard from now on"
    # idempotent: nothing left to repair, and nothing written
    code, out, _ = run_cli("fix", tmp_path / "dst", tmp_path / "again")
    assert code == 0 and "nothing to repair" in out and not (tmp_path / "again").exists()


def test_fix_rebuilds_an_index_that_disagrees(tmp_path, run_cli):
    src = dc.write(tmp_path / "src", dc.gpt_oss_mxfp4(), shards=2)
    index = json.loads((src / INDEX_NAME).read_text())
    del index["weight_map"]["model.norm.weight"]
    (src / INDEX_NAME).write_text(json.dumps(index))
    code, _out, err = run_cli("fix", src, tmp_path / "dst")
    assert code == 0, err
    fixed = json.loads((tmp_path / "dst" / INDEX_NAME).read_text())
    assert "model.norm.weight" in fixed["weight_map"]
    for shard in ("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"):
        assert (tmp_path / "dst" / shard).read_bytes() == (src / shard).read_bytes()


def test_fix_leaves_nothing_when_interrupted(tmp_path, monkeypatch, run_cli):
    ckpt = dc.ct_fp8_block()
    dc.rename_all("weight_scale", "weight_scale_inv")(ckpt)
    src = dc.write(tmp_path / "src", ckpt, shards=2)
    real = fix_module._write_shard
    calls = []

    def interrupted(*args):
        calls.append(args)
        real(*args)
        if len(calls) == 2:
            raise KeyboardInterrupt  # what Ctrl-C (or SIGTERM, via the CLI) raises

    monkeypatch.setattr(fix_module, "_write_shard", interrupted)
    code, _, err = run_cli("fix", src, tmp_path / "dst")
    assert code == 130 and "interrupted" in err
    assert not (tmp_path / "dst").exists() and not _leftovers(tmp_path)


def test_fix_refuses_an_existing_dst_and_dst_inside_src(tmp_path, run_cli):
    ckpt = dc.ct_fp8_block()
    dc.rename_all("weight_scale", "weight_scale_inv")(ckpt)
    src = dc.write(tmp_path / "src", ckpt)
    (tmp_path / "dst").mkdir()
    code, _, err = run_cli("fix", src, tmp_path / "dst")
    assert code == 2 and "already exists" in err
    code, _, err = run_cli("fix", src, src / "out")
    assert code == 2 and "inside SRC" in err
    assert sorted(os.listdir(src)) == ["config.json", "model.safetensors", "tokenizer.json"]


def test_exact_values_round_trip():
    from fp4stack.checkpoint.doctor.nvfp4 import exact_e4m3

    assert exact_e4m3(E4M3_VALUES.copy()) == (0, "")
    assert exact_e4m3(np.array([1.0, -1.0, np.nan]))[0] == 2
    assert exact_e4m3(np.array([449.0]))[0] == 1
