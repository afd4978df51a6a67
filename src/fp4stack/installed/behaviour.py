"""Behaviour probes: a few lines that exercise a defect on CPU, run in the target interpreter.

The one table of which patch is decided how: a patch listed in :data:`PROBES` is decided by
running its snippet (it sets ``affected`` and ``detail``); every other patch by its code
fingerprint (:mod:`fingerprint`), which is what a defect that needs a GPU to show gets.
"""

from __future__ import annotations

import json
from pathlib import Path

from fp4stack.core.errors import CommandError
from fp4stack.core.runner import run

# patch name (without .patch) -> snippet; keys are checked against the series by a test.
PROBES: dict[str, str] = {
    # compressed-tensors 0.13.0 wrote MXFP4 scales as E8M0 with bias 125: the scale 1.0
    # must be the byte 127.
    "store-mxfp4-scales-as-standard-e8m0-bias-127": """
import torch
from compressed_tensors.compressors.quantized_compressors.fp4_quantized import (
    MXFP4PackedCompressor)
from compressed_tensors.quantization.quant_scheme import MXFP4A16
weight = torch.ones(4, 32, dtype=torch.bfloat16)
scale = torch.ones(4, 1, dtype=torch.bfloat16)
stored = MXFP4PackedCompressor().compress_weight(
    weight, scale, global_scale=None, quantization_args=MXFP4A16["weights"])["weight_scale"]
byte = int(stored.reshape(-1)[0])
affected = byte != 127
detail = f"MXFP4 scale 1.0 stored as E8M0 byte {byte} (standard: 127)"
""",
    # Float8 tensors take no part in type promotion: an fp8 NVFP4 group scale divided by a
    # float32 global scale raises unless it is upcast first.
    "do-arithmetic-on-fp8-scales-in-a-non-fp8-dtype": """
import torch
from compressed_tensors.quantization import preset_name_to_scheme
from compressed_tensors.quantization.lifecycle.forward import dequantize
x_q = torch.tensor([[1.0, -2.0] * 16] * 2)
scale = torch.tensor([[2.0, 4.0]] * 2).to(torch.float8_e4m3fn)
args = preset_name_to_scheme("NVFP4", ["Linear"]).weights
try:
    out = dequantize(x_q=x_q, scale=scale, global_scale=torch.tensor([2.0]), args=args,
                     dtype=torch.float32)
    want = x_q * (scale.float() / 2.0).repeat_interleave(16, dim=1)
    affected = not torch.equal(out, want)
    detail = "dequantizing with an fp8 group scale " + ("gives wrong values" if affected
                                                        else "works")
except RuntimeError as error:
    if "Float8" not in str(error):
        raise
    affected = True
    detail = f"dequantizing with an fp8 group scale fails: {error}"
""",
    # transformers compresses the empty model on the meta device: packing must work there.
    "pack-nvfp4-weights-on-the-meta-device-without-torch-compile": """
import torch
from compressed_tensors.compressors.quantized_compressors.fp4_quantized import (
    pack_fp4_to_uint8)
values = torch.tensor([0.0, 0.5, -1.0, 6.0]).repeat(8, 8)
try:
    packed = pack_fp4_to_uint8(values.to("meta"))
    affected = packed.device.type != "meta" or tuple(packed.shape) != (8, 16)
    detail = f"packing on the meta device gives {packed.device.type} {tuple(packed.shape)}"
except RuntimeError as error:
    affected = True
    detail = f"packing NVFP4 on the meta device fails: {str(error).splitlines()[0]}"
""",
    # NVFP4 weights must decompress into the dtype the model was loaded in (float32 here).
    "decompress-weights-into-the-dtype-the-model-was-loaded-in": """
import torch
from compressed_tensors.compressors import ModelCompressor
from compressed_tensors.quantization import (
    QuantizationConfig, QuantizationStatus, apply_quantization_config, preset_name_to_scheme)
FORMAT = "nvfp4-pack-quantized"
model = torch.nn.Sequential(torch.nn.Linear(64, 16, bias=False)).to(torch.float32)
config = QuantizationConfig(
    config_groups={"group_0": preset_name_to_scheme("NVFP4", ["Linear"])},
    format=FORMAT, quantization_status=QuantizationStatus.INITIALIZED)
apply_quantization_config(model, config)
layer = model[0]
weight = layer.weight.detach().float()
global_scale = torch.tensor([448.0 * 6.0]) / weight.abs().max()
group_max = weight.reshape(16, -1, 16).abs().amax(dim=-1)
layer.weight_global_scale.data.copy_(global_scale)
layer.weight_scale.data.copy_(
    (group_max / 6.0 * global_scale).to(torch.float8_e4m3fn).to(layer.weight_scale.dtype))
compressor = ModelCompressor.from_pretrained_model(model, quantization_format=FORMAT)
compressor.compress_model(model)
layer.weight_scale.data = layer.weight_scale.float()
try:
    compressor.decompress_model(model)
    affected = model[0].weight.dtype != torch.float32
    detail = f"an NVFP4 layer of a float32 model decompresses to {model[0].weight.dtype}"
except Exception as error:
    affected = True
    detail = f"decompressing an NVFP4 float32 model fails: {type(error).__name__}: {error}"
""",
}

_RUNNER = r"""
import json, sys, traceback
results = {}
for name, code in json.loads(sys.stdin.read()).items():
    scope = {}
    try:
        exec(compile(code, name, "exec"), scope)
        results[name] = [bool(scope["affected"]), str(scope["detail"])]
    except Exception as error:
        results[name] = [None, f"probe could not run: {type(error).__name__}: {error}"]
print("FP4STACK-PROBES " + json.dumps(results))
"""


def run_probes(python: Path, names: list[str]) -> dict[str, tuple[bool | None, str]]:
    """Run the probes of ``names`` in ``python`` (one process); True means affected, None
    means the probe itself could not run (the fingerprint decides then)."""
    chosen = {n: PROBES[n] for n in names if n in PROBES}
    if not chosen:
        return {}
    try:
        result = run([python, "-c", _RUNNER], input_text=json.dumps(chosen), check=False)
    except CommandError as error:
        return dict.fromkeys(chosen, (None, f"probe could not start: {error}"))
    marker = [ln for ln in result.stdout.splitlines() if ln.startswith("FP4STACK-PROBES ")]
    if not marker:
        tail = result.stdout.strip().splitlines()[-1:] or [f"exit {result.returncode}"]
        return dict.fromkeys(chosen, (None, f"probe process failed: {tail[0]}"))
    data = json.loads(marker[-1].split(" ", 1)[1])
    return {name: (value[0], value[1]) for name, value in data.items()}
