"""Patch: unpack NVFP4 weights without one compilation per weight shape.

The packed weights are nn.Parameters, whose shapes dynamo guards as static, so pristine
0.13.0 compiles its `torch.compile(fullgraph=True)` unpacker once per distinct weight shape
and fails on the ninth (`FailOnRecompileLimitHit`): a model with more than eight distinct
NVFP4 Linear shapes, or a process that loads several models, cannot be decompressed.
"""

from __future__ import annotations

import torch
from compressed_tensors.compressors.quantized_compressors.fp4_quantized import (
    unpack_fp4_from_uint8,
)

FP4_BY_NIBBLE = torch.tensor(
    [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0]
)


def unpack_reference(packed: torch.Tensor) -> torch.Tensor:
    low = FP4_BY_NIBBLE[(packed & 0x0F).long()]
    high = FP4_BY_NIBBLE[(packed >> 4).long()]
    return torch.stack((low, high), dim=-1).reshape(packed.shape[0], -1)


def test_unpack_fp4_parameters_of_many_shapes():
    generator = torch.Generator().manual_seed(0)
    # more distinct shapes than dynamo's default recompile limit (8)
    for rows, half_cols in [(8 * i, 8 + 8 * (i % 3)) for i in range(1, 13)]:
        data = torch.randint(0, 256, (rows, half_cols), dtype=torch.uint8, generator=generator)
        packed = torch.nn.Parameter(data, requires_grad=False)

        unpacked = unpack_fp4_from_uint8(packed, rows, half_cols * 2, dtype=torch.float32)

        torch.testing.assert_close(unpacked, unpack_reference(data), rtol=0, atol=0)
