"""The user's chain, end to end: MXFP4A16 by llm-compressor → fp4stack cast → NVFP4 load.

1. llm-compressor 0.9.0.5 with the *released* compressed-tensors 0.13.0 quantizes a tiny
   Llama (a shape no other test uses) with the MXFP4A16 preset and saves it. The venv holds
   our patched wheel, so this step runs in its own process with the official 0.13.0 wheel
   (the pinned, sha256-checked file in build/cache) unpacked first on PYTHONPATH. The
   released 0.13.0 stores its scales with E8M0 bias 125.
2. ``fp4stack cast mxfp4-to-nvfp4 … --format compressed-tensors`` (auto-detects bias 125
   from the recorded version 0.13.0 and corrects it).
3. transformers 4.57.6 with the patched 0.13.0 (this venv) loads the NVFP4 result: its
   logits are the producer's fake-quant logits, bit for bit, in float32 and bfloat16, with
   ``run_compressed`` True and False.

The same model quantized by the patched 0.13.0 (standard E8M0, version 0.13.0+fp4stack…)
casts to the very same bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from transformers import AutoModelForCausalLM
from transformers.utils.quantization_config import CompressedTensorsConfig

ROOT = Path(__file__).resolve().parents[2]
PRODUCER = Path(__file__).parent / "producers" / "llmcompressor_mxfp4.py"
INPUT_IDS = torch.arange(5, 5 + 20).unsqueeze(0)  # as in the producer script
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def released_wheel() -> Path:
    """The official compressed-tensors 0.13.0 wheel, checked against upstream/pins.toml."""
    upstream = tomllib.loads((ROOT / "upstream" / "pins.toml").read_text())["compressed-tensors"]
    pins = upstream["lines"]["0.13.0"]
    wheel = ROOT / "build" / "cache" / pins["wheel"]["filename"]
    if not wheel.is_file():
        pytest.fail(
            f"{wheel}: missing; `make wheel UPSTREAM=compressed-tensors@0.13.0` downloads it"
        )
    assert hashlib.sha256(wheel.read_bytes()).hexdigest() == pins["wheel"]["sha256"], wheel
    return wheel


@pytest.fixture(scope="module")
def released_ct(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding the released compressed_tensors package, to put first on PYTHONPATH."""
    where = tmp_path_factory.mktemp("released-ct")
    with zipfile.ZipFile(released_wheel()) as wheel:
        wheel.extractall(where)
    return where


def produce(out: Path, pythonpath: Path | None) -> dict[str, str]:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(pythonpath), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, str(PRODUCER), str(out)], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    used: dict[str, str] = json.loads(done.stdout.strip().splitlines()[-1])
    return used


def cast(src: Path, dst: Path, *flags: str) -> str:
    """``fp4stack cast`` as a user runs it (numpy only: this venv has it)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    argv = [sys.executable, "-m", "fp4stack", "cast", "mxfp4-to-nvfp4", str(src), str(dst)]
    done = subprocess.run(
        [*argv, "--format", "compressed-tensors", *flags], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def released(released_ct: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The producer's directory: compressed/ (MXFP4A16, bias 125) and its logits."""
    out = tmp_path_factory.mktemp("released-producer")
    used = produce(out, released_ct)
    assert used["version"] == "0.13.0" and used["file"].startswith(str(released_ct)), used
    return out


@pytest.fixture(scope="module")
def nvfp4(released: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    dst = tmp_path_factory.mktemp("cast") / "nvfp4"
    return dst, cast(released / "compressed", dst)


def scale_bytes(path: Path) -> dict[str, torch.Tensor]:
    with safe_open(str(path / "model.safetensors"), "pt") as f:
        return {k: f.get_tensor(k) for k in f.keys() if k.endswith(".weight_scale")}  # noqa: SIM118


def test_released_producer_writes_bias_125(released):
    """The premise: the released 0.13.0 records version 0.13.0 and its scales are E8M0 - 2
    (the patched producer's bytes are tested in test_mxfp4_scale_encoding.py)."""
    config = json.loads((released / "compressed" / "config.json").read_text())
    assert config["quantization_config"]["version"] == "0.13.0"
    assert (released / "compressed" / "recipe.yaml").exists()


def test_cast_reports_the_correction_and_drops_the_recipe(nvfp4):
    dst, report = nvfp4
    assert "E8M0 scale bias 125 (compressed-tensors 0.13.0" in report
    assert "corrected by +2" in report
    assert "not copied: recipe.yaml" in report
    assert not (dst / "recipe.yaml").exists()
    assert "100.0000% lossless" in report  # every block exact: the logits below can be equal
    qc = json.loads((dst / "config.json").read_text())["quantization_config"]
    assert qc["format"] == "nvfp4-pack-quantized" and "version" not in qc


@pytest.mark.parametrize("run_compressed", [True, False], ids=lambda v: f"run_compressed-{v}")
@pytest.mark.parametrize("dtype_name", list(DTYPES))
def test_nvfp4_cast_gives_the_producers_fake_quant_logits(
    released, nvfp4, dtype_name, run_compressed
):
    dst, _ = nvfp4
    model = AutoModelForCausalLM.from_pretrained(
        dst,
        dtype=DTYPES[dtype_name],
        quantization_config=CompressedTensorsConfig(run_compressed=run_compressed),
    )
    with torch.no_grad():
        logits = model(INPUT_IDS).logits
    expected = torch.load(released / f"logits-{dtype_name}.pt")
    assert logits.dtype == expected.dtype
    error = ((logits.float() - expected.float()).norm() / expected.float().norm()).item()
    assert torch.equal(logits, expected), f"relative error {error:.2e}, expected 0"


def test_without_the_correction_the_weights_are_a_quarter(released, nvfp4, tmp_path):
    """Control: read as standard E8M0 (--mxfp4-scale-bias 127), every block scale is 1/4."""
    dst, _ = nvfp4
    wrong = tmp_path / "as-127"
    report = cast(released / "compressed", wrong, "--mxfp4-scale-bias", "127")
    assert "used as stored" in report
    with (
        safe_open(str(dst / "model.safetensors"), "pt") as f,
        safe_open(str(wrong / "model.safetensors"), "pt") as g,
    ):
        for name in f.keys():  # noqa: SIM118
            if name.endswith(".weight_global_scale"):
                assert torch.equal(g.get_tensor(name), f.get_tensor(name) * 4), name


def test_patched_producer_casts_to_the_same_bytes(nvfp4, tmp_path):
    """The patched 0.13.0 (this venv) writes standard E8M0 and says so in its version: the
    cast uses its scales as stored and writes what the corrected released checkpoint gave."""
    used = produce(tmp_path, None)
    assert used["version"] == "0.13.0"  # __version__ is unchanged; the config says more
    config = json.loads((tmp_path / "compressed" / "config.json").read_text())
    assert config["quantization_config"]["version"].startswith("0.13.0+fp4stack.")
    report = cast(tmp_path / "compressed", tmp_path / "nvfp4")
    assert "E8M0 scale bias 127" in report and "used as stored" in report
    dst, _ = nvfp4
    assert (tmp_path / "nvfp4" / "model.safetensors").read_bytes() == (
        dst / "model.safetensors"
    ).read_bytes()
