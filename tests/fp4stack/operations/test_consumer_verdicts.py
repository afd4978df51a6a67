"""The doctor's consumer verdicts come from the lines we carry and their patches' `Affects:`
trailers: every line is named with its own patch, and a line added to the pins is named
with no code change."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from fp4stack.operations.diagnosis import diagnose_checkpoint
from fp4stack.stack.pins import load_project

from ..checkpoint.doctor import doctor_ckpt as dc

ROOT = Path(__file__).resolve().parents[3]


def _verdicts(root: Path, project=None) -> dict[str, tuple[str, tuple[str, ...]]]:
    report = diagnose_checkpoint(root, project or load_project(ROOT))
    return {c.consumer: (c.verdict, c.patches) for c in report.consumers}


def _lines(upstream: str) -> list[str]:
    return [ln.version for ln in load_project(ROOT).lines_of(upstream)]


def test_nvfp4_gpt_oss_in_modelopt_format_names_every_vllm_line_with_its_patch(tmp_path):
    found = _verdicts(dc.write(tmp_path / "c", dc.modelopt_nvfp4(gpt_oss=True)))
    for version in _lines("vllm"):
        verdict, patches = found[f"vllm {version}"]
        assert verdict == "needs-patch"
        assert patches == (
            f"patches/vllm/{version}/load-and-run-modelopt-nvfp4-gpt-oss-checkpoints.patch",
        )
        assert (ROOT / patches[0]).is_file()


def test_a_dense_modelopt_checkpoint_loads_in_every_vllm_line(tmp_path):
    found = _verdicts(dc.write(tmp_path / "c", dc.modelopt_nvfp4()))
    assert {found[f"vllm {v}"][0] for v in _lines("vllm")} == {"loads"}


def test_nvfp4_from_compressed_tensors_names_every_compressed_tensors_line(tmp_path):
    found = _verdicts(dc.write(tmp_path / "c", dc.ct_nvfp4()))
    for version in _lines("compressed-tensors"):
        verdict, patches = found[f"compressed-tensors {version}"]
        assert verdict == "needs-patch" and patches, version
        assert all(p.startswith(f"patches/compressed-tensors/{version}/") for p in patches)
        assert all((ROOT / p).is_file() for p in patches)


def test_block_fp8_needs_the_marlin_fix_only_where_the_line_carries_it(tmp_path):
    found = _verdicts(dc.write(tmp_path / "c", dc.ct_fp8_block()))
    marlin = "accept-weight-scale-in-the-fp8-block-quant-marlin-kernel.patch"
    for line in load_project(ROOT).lines_of("vllm"):
        carried = (ROOT / line.patch_dir / marlin).is_file()
        _, patches = found[f"vllm {line.version}"]
        assert any(p.endswith(marlin) for p in patches) == carried, line.id


def test_an_unsupported_checkpoint_does_not_load(tmp_path):
    found = _verdicts(dc.write(tmp_path / "c", dc.ct_mxfp4()))
    assert found["compressed-tensors 0.13.0"][0] == "does-not-load"
    assert found["fp4stack cast mxfp4-to-nvfp4"][0] == "loads"


def _copy_checkout(dst: Path) -> Path:
    """The checkout's pins and patches (what the doctor reads), in ``dst``."""
    shutil.copytree(ROOT / "patches", dst / "patches")
    (dst / "upstream").mkdir(parents=True)
    shutil.copy(ROOT / "upstream" / "pins.toml", dst / "upstream" / "pins.toml")
    return dst


NEW_LINE = """
[vllm.lines."9.9.0"]
tag = "v9.9.0"
commit = ""
[vllm.lines."9.9.0".wheel]
filename = "vllm-9.9.0-cp38-abi3-manylinux_2_28_x86_64.whl"
sha256 = "{zeros}"
[vllm.lines."9.9.0".env]
torch = "2.14.0"
""".format(zeros="0" * 64)


@pytest.mark.parametrize("via", ["api", "cli"])
def test_a_new_line_is_named_with_no_code_change(tmp_path, run_cli, monkeypatch, via):
    """What `fp4stack rebase` adds (a pins table and a series) is all the doctor needs."""
    checkout = _copy_checkout(tmp_path / "checkout")
    pins = checkout / "upstream" / "pins.toml"
    pins.write_text(pins.read_text() + NEW_LINE)
    newest = load_project(ROOT).newest("vllm")
    shutil.copytree(checkout / newest.patch_dir, checkout / "patches" / "vllm" / "9.9.0")
    ckpt = dc.write(tmp_path / "c", dc.modelopt_nvfp4(gpt_oss=True))
    patch = "patches/vllm/9.9.0/load-and-run-modelopt-nvfp4-gpt-oss-checkpoints.patch"
    if via == "api":
        found = _verdicts(ckpt, load_project(checkout))
        assert found["vllm 9.9.0"] == ("needs-patch", (patch,))
        return
    monkeypatch.setenv("FP4STACK_ROOT", str(checkout))
    code, out, _ = run_cli("doctor", ckpt, "--json")
    consumers = {c["consumer"]: c for c in json.loads(out)["consumers"]}
    assert code == 0
    assert consumers["vllm 9.9.0"]["patches"] == [patch]
    assert consumers["vllm 9.9.0"]["command"] == "fp4stack install vllm"
    code, out, _ = run_cli("doctor", ckpt)
    assert re.search(r"needs-patch +vllm 9\.9\.0: Load and run ModelOpt NVFP4 gpt-oss", out)
    assert f"patch: {patch}" in out
    assert "no fp4stack line" not in out


def test_without_a_checkout_the_lines_are_unknown_not_guessed(tmp_path):
    report = diagnose_checkpoint(dc.write(tmp_path / "c", dc.modelopt_nvfp4()), None)
    assert [c.verdict for c in report.consumers] == ["unknown"]


def test_every_format_the_vocabulary_names_has_a_checker_and_a_detector_label():
    """A format added to core/formats.py without a validator fails here, not by falling
    through to another format's checks."""
    from fp4stack.checkpoint.doctor.checkers import CHECKERS, checker
    from fp4stack.core.formats import FORMATS

    assert set(CHECKERS) == set(FORMATS.values())
    with pytest.raises(LookupError, match="no checker for format 'nvfp5'"):
        checker("nvfp5")
