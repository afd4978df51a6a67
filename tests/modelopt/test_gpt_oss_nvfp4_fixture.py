"""The committed ModelOpt GptOss NVFP4 checkpoint is what the patched export writes today.

``tests/vllm/data/gpt_oss_nvfp4_modelopt/`` is loaded by the vLLM tests, which cannot run
ModelOpt (see ``gpt_oss_nvfp4_fixture.py``). This test regenerates it and compares every
tensor bit for bit and both configs, so the fixture cannot drift from the exporter.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

_spec = importlib.util.spec_from_file_location(
    "gpt_oss_nvfp4_fixture", Path(__file__).with_name("gpt_oss_nvfp4_fixture.py")
)
assert _spec is not None and _spec.loader is not None
fixture = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = fixture
_spec.loader.exec_module(fixture)
FIXTURE, KEEP, write = fixture.FIXTURE, fixture.KEEP, fixture.write


def _bytes(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(-1).view(torch.uint8)


# The committed fixture is the modelopt@0.44.0 line's export (the vLLM tests load it).
# Other lines export it differently (0.47.0: other expert scales and nibbles from the same
# seed, embed_tokens and router in the ignore list, and its own producer version), so the
# bit-for-bit check only means something on the line that wrote it.
FIXTURE_LINE = "modelopt@0.44.0"


def _drop_series_id(node: object) -> object:
    """The producer's ``0.44.0+fp4stack.<id>``: the id names the patch series, whose
    headers may change without changing what the export writes, so it is left out."""
    if isinstance(node, dict):
        return {k: _drop_series_id(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_drop_series_id(v) for v in node]
    if isinstance(node, str) and "+fp4stack." in node:
        return node.split("+fp4stack.", 1)[0] + "+fp4stack"
    return node


def _config(path: Path) -> object:
    return _drop_series_id(json.loads(path.read_text()))


@pytest.mark.skipif(
    os.environ.get("FP4STACK_LINE", FIXTURE_LINE) != FIXTURE_LINE,
    reason=f"the committed fixture is {FIXTURE_LINE}'s export",
)
def test_committed_gpt_oss_nvfp4_fixture_is_current(tmp_path: Path) -> None:
    out = write(tmp_path)
    assert sorted(f.name for f in out.iterdir()) == sorted(KEEP)
    for name in ("config.json", "hf_quant_config.json"):
        got, want = _config(out / name), _config(FIXTURE / name)
        assert got == want, name
    got, want = (
        load_file(str(out / "model.safetensors")),
        load_file(str(FIXTURE / "model.safetensors")),
    )
    assert sorted(got) == sorted(want)
    for name, tensor in want.items():
        assert got[name].dtype == tensor.dtype and got[name].shape == tensor.shape, name
        assert torch.equal(_bytes(got[name]), _bytes(tensor)), name
    quant = json.loads((out / "hf_quant_config.json").read_text())["quantization"]
    assert quant["quant_algo"] == "W4A16_NVFP4"
    assert "model.layers.0.mlp.experts.gate_up_proj_weight_scale_2" in got
