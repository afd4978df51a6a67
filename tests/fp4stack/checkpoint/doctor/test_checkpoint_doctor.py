"""The checkpoint doctor: each seeded defect is found (code and tensor), and a clean checkpoint
of every format gives no finding (its consumer verdicts:
operations/test_consumer_verdicts.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fp4stack.checkpoint.doctor.diagnose import diagnose
from fp4stack.checkpoint.reader import INDEX_NAME

from . import doctor_ckpt as dc

ROOT = Path(__file__).resolve().parents[4]
L0 = "model.layers.0"
CLEAN = {
    "ct-nvfp4": dc.ct_nvfp4,
    "ct-mxfp4": dc.ct_mxfp4,
    "ct-fp8-block": dc.ct_fp8_block,
    "fp8-block": dc.fp8_block,
    "modelopt-nvfp4": dc.modelopt_nvfp4,
    "modelopt-nvfp4-gpt-oss": lambda: dc.modelopt_nvfp4(gpt_oss=True),
    "gpt-oss-mxfp4": dc.gpt_oss_mxfp4,
}


def _drop(name):
    def edit(c):
        del c.tensors[name]

    return edit


def _set(name, tensor):
    def edit(c):
        c.tensors[name] = tensor

    return edit


def _poke(name, index, value):
    """Overwrite one element of a tensor's stored bytes."""

    def edit(c):
        dtype, array = c.tensors[name]
        array = array.copy()
        array.reshape(-1)[index] = value
        c.tensors[name] = (dtype, array)

    return edit


def _qc(**changes):
    def edit(c):
        c.config["quantization_config"] |= changes

    return edit


def _group(**changes):
    def edit(c):
        c.config["quantization_config"]["config_groups"]["group_0"]["weights"] |= changes

    return edit


NV, MX = f"{L0}.mlp.gate_proj", f"{L0}.self_attn.q_proj"
DEFECTS = [
    ("ct-nvfp4", "no-global-scale", _drop(f"{NV}.weight_global_scale"), "missing-partner", NV),
    ("ct-nvfp4", "no-block-scale", _drop(f"{NV}.weight_scale"), "missing-partner", NV),
    ("ct-nvfp4", "no-input-scale", _drop(f"{NV}.input_global_scale"), "missing-partner", NV),
    (
        "ct-nvfp4",
        "zero-global",
        _set(f"{NV}.weight_global_scale", dc.f32([0.0])),
        "bad-global-scale",
        NV,
    ),
    (
        "ct-nvfp4",
        "inf-global",
        _set(f"{NV}.weight_global_scale", dc.f32([np.inf])),
        "bad-global-scale",
        NV,
    ),
    (
        "ct-nvfp4",
        "global-shape",
        _set(f"{NV}.weight_global_scale", dc.f32([1.0, 2.0])),
        "bad-global-scale",
        NV,
    ),
    ("ct-nvfp4", "nan-block-scale", _poke(f"{NV}.weight_scale", 5, 0x7F), "bad-scale-values", NV),
    (
        "ct-nvfp4",
        "negative-block-scale",
        _poke(f"{NV}.weight_scale", 5, 0xB8),
        "bad-scale-values",
        NV,
    ),
    (
        "ct-nvfp4",
        "all-zero-block-scales",
        _set(f"{NV}.weight_scale", ("F8_E4M3", np.zeros((128, 4), np.uint8))),
        "bad-scale-values",
        NV,
    ),
    (
        "ct-nvfp4",
        "scale-shape",
        _set(f"{NV}.weight_scale", dc.e4m3(np.ones((128, 2)))),
        "bad-shape",
        NV,
    ),
    (
        "ct-nvfp4",
        "scale-dtype",
        _set(f"{NV}.weight_scale", dc.u8(np.ones((128, 4)))),
        "bad-dtype",
        NV,
    ),
    ("ct-nvfp4", "group-32", _group(group_size=32), "nvfp4-group-size", "config.json"),
    ("ct-nvfp4", "bf16-scales-exact", dc.widen_scales(), "nvfp4-fix-bf16-scale", NV),
    ("ct-nvfp4", "bf16-scales-inexact", dc.widen_scales(exact=False), "nvfp4-fix-bf16-scale", NV),
    (
        "ct-nvfp4",
        "orphan-scale",
        _set("model.layers.0.mlp.up_proj.weight_scale", dc.e4m3(np.ones((128, 4)))),
        "orphan-scale",
        "up_proj",
    ),
    ("ct-mxfp4", "bias-125", _qc(version="0.13.0"), "mxfp4-scale-bias-125", "config.json"),
    (
        "ct-mxfp4",
        "no-version",
        lambda c: c.config["quantization_config"].pop("version"),
        "mxfp4-scale-bias-unknown",
        "config.json",
    ),
    ("ct-mxfp4", "nan-scale", _poke(f"{MX}.weight_scale", 0, 255), "bad-scale-values", MX),
    ("ct-mxfp4", "no-scale", _drop(f"{MX}.weight_scale"), "missing-partner", MX),
    (
        "ct-mxfp4",
        "scale-shape",
        _set(f"{MX}.weight_scale", dc.u8(np.ones((64, 4)))),
        "bad-shape",
        MX,
    ),
    ("ct-mxfp4", "group-16", _group(group_size=16), "mxfp4-group-size", "config.json"),
    (
        "ct-fp8-block",
        "scale-inv-name",
        dc.rename_all("weight_scale", "weight_scale_inv"),
        "fp8-block-scale-name",
        "weight_scale_inv",
    ),
    (
        "ct-fp8-block",
        "block-shape",
        _set(f"{NV}.weight_scale", dc.f32(np.ones((2, 2)))),
        "bad-shape",
        NV,
    ),
    ("ct-fp8-block", "zero-scale", _poke(f"{NV}.weight_scale", 1, 0.0), "bad-scale-values", NV),
    ("ct-fp8-block", "no-scale", _drop(f"{NV}.weight_scale"), "missing-partner", NV),
    (
        "fp8-block",
        "ct-name",
        dc.rename_all("weight_scale_inv", "weight_scale"),
        "fp8-block-scale-name",
        "weight_scale",
    ),
    ("fp8-block", "nan-scale", _poke(f"{NV}.weight_scale_inv", 0, np.nan), "bad-scale-values", NV),
    ("modelopt-nvfp4", "no-scale-2", _drop(f"{MX}.weight_scale_2"), "missing-partner", MX),
    (
        "modelopt-nvfp4",
        "inf-scale-2",
        _set(f"{MX}.weight_scale_2", dc.f32(np.float32(np.inf))),
        "bad-global-scale",
        MX,
    ),
    ("modelopt-nvfp4", "bf16-scales", dc.widen_scales(), "nvfp4-fix-bf16-scale", MX),
    (
        "modelopt-nvfp4-gpt-oss",
        "expert-scale-shape",
        _set(f"{L0}.mlp.experts.down_proj_weight_scale", dc.e4m3(np.ones((4, 4, 64)))),
        "bad-shape",
        "down_proj_weight_scale",
    ),
    (
        "modelopt-nvfp4-gpt-oss",
        "expert-no-scale-2",
        _drop(f"{L0}.mlp.experts.gate_up_proj_weight_scale_2"),
        "missing-partner",
        "gate_up_proj",
    ),
    (
        "modelopt-nvfp4",
        "algo-disagrees",
        lambda c: c.files["hf_quant_config.json"]["quantization"].update(quant_algo="NVFP4"),
        "config-mismatch",
        "config.json",
    ),
    (
        "ct-mxfp4",
        "nvfp4-module",
        _set(f"{MX}.weight_global_scale", dc.f32([100.0])),
        "format-mismatch",
        MX,
    ),
    (
        "gpt-oss-mxfp4",
        "no-scales",
        _drop(f"{L0}.mlp.experts.down_proj_scales"),
        "missing-partner",
        "down_proj_blocks",
    ),
    (
        "gpt-oss-mxfp4",
        "scales-shape",
        _set(f"{L0}.mlp.experts.down_proj_scales", dc.u8(np.ones((4, 64, 3)))),
        "bad-shape",
        "down_proj_scales",
    ),
    (
        "gpt-oss-mxfp4",
        "nan-scale",
        _poke(f"{L0}.mlp.experts.gate_up_proj_scales", 7, 255),
        "bad-scale-values",
        "gate_up_proj_scales",
    ),
    (
        "gpt-oss-mxfp4",
        "orphan-scales",
        _set(f"{L0}.mlp.experts.up_proj_scales", dc.u8(np.ones((4, 8, 2)))),
        "orphan-scale",
        "up_proj_scales",
    ),
]


@pytest.mark.parametrize("fmt", sorted(CLEAN))
@pytest.mark.parametrize("shards", [1, 3])
def test_clean_checkpoint_has_no_findings(tmp_path, fmt, shards):
    report = diagnose(dc.write(tmp_path / fmt, CLEAN[fmt](), shards=shards))
    assert report.findings == []
    assert report.healthy and report.quantized > 0


@pytest.mark.parametrize(
    ("fmt", "defect", "edit", "code", "where"), DEFECTS, ids=[f"{d[0]}-{d[1]}" for d in DEFECTS]
)
def test_seeded_defect_is_found(tmp_path, fmt, defect, edit, code, where):
    ckpt = CLEAN[fmt]()
    edit(ckpt)
    report = diagnose(dc.write(tmp_path / fmt, ckpt, shards=2))
    hits = [f for f in report.findings if f.code == code and where in f.where]
    assert hits, [(f.code, f.where) for f in report.findings]
    assert not report.healthy
    assert all(f.fix for f in report.findings)


def test_each_missing_partner_of_one_weight_is_its_own_finding(tmp_path):
    """A weight missing both its block scales and its input scale: two fixes, two findings."""
    ckpt = CLEAN["ct-nvfp4"]()
    _drop(f"{NV}.weight_scale")(ckpt)
    _drop(f"{NV}.input_global_scale")(ckpt)
    report = diagnose(dc.write(tmp_path / "c", ckpt))
    missing = [f.message for f in report.findings if f.code == "missing-partner"]
    assert len(missing) == 2, missing
    assert any("weight_scale" in m for m in missing)
    assert any("input_global_scale" in m for m in missing)


def test_index_that_disagrees_with_the_shards(tmp_path):
    root = dc.write(tmp_path / "c", dc.ct_nvfp4(), shards=2)
    index = json.loads((root / INDEX_NAME).read_text())
    first = sorted(index["weight_map"])[0]
    index["weight_map"][first] = "model-00002-of-00002.safetensors"  # it is in 00001
    index["metadata"]["total_size"] += 1
    (root / INDEX_NAME).write_text(json.dumps(index))
    codes = {f.code: f for f in diagnose(root).findings}
    assert first in codes["index-mismatch"].message
    assert "index-total-size" in codes


def test_bf16_scales_inexact_names_the_numbers(tmp_path):
    ckpt = dc.ct_nvfp4()
    dc.widen_scales(exact=False)(ckpt)
    report = diagnose(dc.write(tmp_path / "c", ckpt))
    refused = [f for f in report.findings if f.refusal]
    assert refused and "1 of 512 values are not exact E4M3" in refused[0].refusal
    assert "1.0078125" in refused[0].refusal


def test_headers_only_reads_no_values(tmp_path):
    ckpt = dc.ct_nvfp4()
    _poke(f"{NV}.weight_scale", 5, 0x7F)(ckpt)
    root = dc.write(tmp_path / "c", ckpt)
    assert diagnose(root, headers_only=True).findings == []
    assert diagnose(root).findings


def test_bias_125_shift_out_of_range_is_refused_with_the_numbers(tmp_path):
    ckpt = dc.ct_mxfp4(version="0.13.0")
    _poke(f"{MX}.weight_scale", 3, 254)(ckpt)
    report = diagnose(dc.write(tmp_path / "c", ckpt))
    [finding] = [f for f in report.findings if f.code == "mxfp4-scale-bias-125"]
    assert finding.repairs == ()
    assert "1 scales of non-zero blocks would leave the E8M0 range" in finding.refusal
    assert f"{MX}.weight_scale index 3: byte 254" in finding.refusal
