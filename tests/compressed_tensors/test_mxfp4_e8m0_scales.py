"""Patch: MXFP4/MXFP8 scales stored as float8_e8m0fnu are read and written as bits.

An e8m0 scale's bit pattern is its biased exponent (value = 2 ** (bits - 127)).
compressed-tensors 0.20.1's `compress_mx_scale`/`decompress_mx_scale` convert between the
exponent and `float8_e8m0fnu` by value, so a checkpoint whose `weight_scale` is
float8_e8m0fnu decompresses to ~1e-38 weights, and compressing into that dtype stores
2 ** round(log2(exponent)) instead of the scale.
"""

from __future__ import annotations

import pytest
import torch

mxfp4 = pytest.importorskip("compressed_tensors.compressors.mxfp4.base")
mx_utils = pytest.importorskip("compressed_tensors.compressors.mx_utils")
from compressed_tensors.quantization import QuantizationScheme  # noqa: E402
from compressed_tensors.quantization.quant_scheme import preset_name_to_scheme  # noqa: E402

# 2 ** -5 (bits 122) and 2 ** -7 (bits 120): the range real MXFP4 weight scales sit in
SCALES = torch.tensor([[2.0**-5], [2.0**-7]])


def mxfp4_scheme() -> QuantizationScheme:
    return preset_name_to_scheme("MXFP4", ["Linear"])


def test_decompress_reads_e8m0_scale_bits():
    # every packed byte 0x22: two fp4 codes 2, i.e. 1.0; one group of 32 per row
    packed = torch.full((2, 16), 0x22, dtype=torch.uint8)
    exponents = (127 + torch.log2(SCALES)).to(torch.uint8)
    state_dict = {
        "weight_packed": packed,
        "weight_scale": exponents.view(torch.float8_e8m0fnu),
    }

    out = mxfp4.MXFP4PackedCompressor.decompress(state_dict, mxfp4_scheme())

    expected = SCALES.expand(2, 32).to(out["weight"].dtype)
    torch.testing.assert_close(out["weight"], expected, rtol=0, atol=0)


def test_compress_writes_e8m0_scale_bits():
    compressed = mx_utils.compress_mx_scale(SCALES, torch.float8_e8m0fnu)

    assert compressed.dtype == torch.float8_e8m0fnu
    # the stored value is the scale itself: e8m0 represents every power of two exactly
    torch.testing.assert_close(compressed.float(), SCALES, rtol=0, atol=0)
    assert compressed.view(torch.uint8).flatten().tolist() == [122, 120]


def test_e8m0_scale_round_trips():
    compressed = mx_utils.compress_mx_scale(SCALES, torch.float8_e8m0fnu)

    restored = mx_utils.decompress_mx_scale(compressed)

    torch.testing.assert_close(restored.float(), SCALES, rtol=0, atol=0)
