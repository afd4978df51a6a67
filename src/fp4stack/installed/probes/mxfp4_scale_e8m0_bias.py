"""Is the MXFP4 scale 1.0 stored as the E8M0 byte 127 (standard bias), not 125?

compressed-tensors 0.13.0 wrote MXFP4 scales as E8M0 with bias 125.
"""

from __future__ import annotations

import json
import sys

import torch
from compressed_tensors.compressors.quantized_compressors.fp4_quantized import (
    MXFP4PackedCompressor,
)
from compressed_tensors.quantization.quant_scheme import MXFP4A16


def probe() -> tuple[bool, str]:
    """(affected, detail) of this interpreter's compressed-tensors."""
    weight = torch.ones(4, 32, dtype=torch.bfloat16)
    scale = torch.ones(4, 1, dtype=torch.bfloat16)
    stored = MXFP4PackedCompressor().compress_weight(
        weight, scale, global_scale=None, quantization_args=MXFP4A16["weights"]
    )["weight_scale"]
    byte = int(stored.reshape(-1)[0])
    return byte != 127, f"MXFP4 scale 1.0 stored as E8M0 byte {byte} (standard: 127)"


if __name__ == "__main__":
    affected, detail = probe()
    sys.stdout.write(json.dumps({"affected": affected, "detail": detail}) + "\n")
