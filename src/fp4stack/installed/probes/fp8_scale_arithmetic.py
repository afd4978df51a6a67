"""Does dequantizing with an fp8 NVFP4 group scale give the right values?

Float8 tensors take no part in type promotion: an fp8 group scale divided by a float32 global
scale raises unless it is upcast first.
"""

from __future__ import annotations

import json
import sys

import torch
from compressed_tensors.quantization import preset_name_to_scheme
from compressed_tensors.quantization.lifecycle.forward import dequantize


def probe() -> tuple[bool, str]:
    """(affected, detail) of this interpreter's compressed-tensors."""
    x_q = torch.tensor([[1.0, -2.0] * 16] * 2)
    scale = torch.tensor([[2.0, 4.0]] * 2).to(torch.float8_e4m3fn)
    args = preset_name_to_scheme("NVFP4", ["Linear"]).weights
    try:
        out = dequantize(
            x_q=x_q, scale=scale, global_scale=torch.tensor([2.0]), args=args, dtype=torch.float32
        )
        want = x_q * (scale.float() / 2.0).repeat_interleave(16, dim=1)
        affected = not torch.equal(out, want)
    except RuntimeError as error:
        if "Float8" not in str(error):
            raise
        return True, f"dequantizing with an fp8 group scale fails: {error}"
    return affected, "dequantizing with an fp8 group scale " + (
        "gives wrong values" if affected else "works"
    )


if __name__ == "__main__":
    affected, detail = probe()
    sys.stdout.write(json.dumps({"affected": affected, "detail": detail}) + "\n")
