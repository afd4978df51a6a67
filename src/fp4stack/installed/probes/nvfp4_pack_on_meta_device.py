"""Does packing NVFP4 weights work on the meta device?

transformers compresses the empty model on the meta device, so packing must work there.
"""

from __future__ import annotations

import json
import sys

import torch
from compressed_tensors.compressors.quantized_compressors.fp4_quantized import (
    pack_fp4_to_uint8,
)


def probe() -> tuple[bool, str]:
    """(affected, detail) of this interpreter's compressed-tensors."""
    values = torch.tensor([0.0, 0.5, -1.0, 6.0]).repeat(8, 8)
    try:
        packed = pack_fp4_to_uint8(values.to("meta"))
    except RuntimeError as error:
        return True, f"packing NVFP4 on the meta device fails: {str(error).splitlines()[0]}"
    shape = tuple(packed.shape)
    affected = packed.device.type != "meta" or shape != (8, 16)
    return affected, f"packing on the meta device gives {packed.device.type} {shape}"


if __name__ == "__main__":
    affected, detail = probe()
    sys.stdout.write(json.dumps({"affected": affected, "detail": detail}) + "\n")
